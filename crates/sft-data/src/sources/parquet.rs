//! Apache Parquet, read through Arrow record batches.

use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, OffsetSizeTrait};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Number, Value};

use crate::error::{DataError, Result};
use crate::record::{Location, Position, Record};

/// Reads `path` as Parquet. Columns of text, integer, float, boolean, list and struct types become JSON values
/// (so a `messages` column of `list<struct<role, content>>` becomes a list of `{role, content}` objects); any
/// other column type is an error naming the column. Rows are numbered across row groups (0-based).
///
/// The `parquet` crate panics on some damaged files instead of returning an error (the data fuzz test found
/// several, such as "column start and length should not be negative"); such a panic is caught here and becomes a
/// [`DataError::Parse`] naming the file, so a damaged file never takes the process down.
pub(super) fn read(path: &Path) -> Result<Vec<Record>> {
    std::panic::catch_unwind(|| read_checked(path)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(DataError::Parse {
            location: Location::new(Arc::from(path), Position::File),
            message: format!("malformed Parquet: the reader stopped on an inconsistent file ({message})"),
        })
    })
}

fn read_checked(path: &Path) -> Result<Vec<Record>> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let path: Arc<Path> = Arc::from(path);
    let parse = |e: parquet::errors::ParquetError| DataError::Parse {
        location: Location::new(path.clone(), Position::File),
        message: format!("malformed Parquet: {e}"),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parse)?;
    for field in builder.schema().fields() {
        if !supported(field.data_type()) {
            return Err(DataError::UnsupportedColumnType {
                path: path.to_path_buf(),
                column: field.name().clone(),
                data_type: type_name(field.data_type()),
            });
        }
    }
    let types: Arc<[(String, String)]> =
        builder.schema().fields().iter().map(|f| (f.name().clone(), type_name(f.data_type()))).collect();
    let reader = builder.build().map_err(parse)?;
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| DataError::Parse {
            location: Location::new(path.clone(), Position::Row { row: records.len(), line: None }),
            message: format!("malformed Parquet: {e}"),
        })?;
        let schema = batch.schema();
        let mut columns = Vec::with_capacity(batch.num_columns());
        for column in batch.columns() {
            columns.push(values(column.as_ref()));
        }
        let mut columns: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
        for _ in 0..batch.num_rows() {
            let mut fields = Map::with_capacity(columns.len());
            for (field, column) in schema.fields().iter().zip(columns.iter_mut()) {
                fields.insert(field.name().clone(), column.next().unwrap_or(Value::Null));
            }
            let location = Location::new(path.clone(), Position::Row { row: records.len(), line: None });
            records.push(Record { location, fields, column_types: Some(types.clone()) });
        }
    }
    Ok(records)
}

/// The name pyarrow and `datasets` give `data_type` (`int64`, `double`, `string`, `list<item: string>`), which is
/// what a user sees when they inspect the file in Python; Arrow's own names (`Int64`, `Float64`, `Utf8`) for the
/// types that have no pyarrow spelling here.
fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "null".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "halffloat".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 => "string".into(),
        DataType::LargeUtf8 => "large_string".into(),
        DataType::Utf8View => "string_view".into(),
        DataType::Binary => "binary".into(),
        DataType::LargeBinary => "large_binary".into(),
        DataType::List(item) => format!("list<{}: {}>", item.name(), type_name(item.data_type())),
        DataType::LargeList(item) => format!("large_list<{}: {}>", item.name(), type_name(item.data_type())),
        DataType::Struct(fields) => {
            let fields: Vec<String> =
                fields.iter().map(|f| format!("{}: {}", f.name(), type_name(f.data_type()))).collect();
            format!("struct<{}>", fields.join(", "))
        }
        other => other.to_string(),
    }
}

/// Whether [`values`] can convert arrays of this type.
fn supported(data_type: &DataType) -> bool {
    match data_type {
        DataType::Null
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View => true,
        DataType::List(item) | DataType::LargeList(item) => supported(item.data_type()),
        DataType::Struct(fields) => fields.iter().all(|f| supported(f.data_type())),
        _ => false,
    }
}

/// Every element of `array` as a JSON value (nulls as `Value::Null`). Only called on [`supported`] types; any other
/// type yields nulls, which cannot happen because the schema is checked first.
fn values(array: &dyn Array) -> Vec<Value> {
    let n = array.len();
    let mut out: Vec<Value> = match array.data_type() {
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..n).map(|i| Value::Bool(a.value(i))).collect()
        }
        DataType::Int8 => ints::<Int8Type>(array),
        DataType::Int16 => ints::<Int16Type>(array),
        DataType::Int32 => ints::<Int32Type>(array),
        DataType::Int64 => ints::<Int64Type>(array),
        DataType::UInt8 => ints::<UInt8Type>(array),
        DataType::UInt16 => ints::<UInt16Type>(array),
        DataType::UInt32 => ints::<UInt32Type>(array),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().values().iter().map(|&v| Value::from(v)).collect(),
        DataType::Float32 => floats(array.as_primitive::<Float32Type>().values().iter().map(|&v| f64::from(v))),
        DataType::Float64 => floats(array.as_primitive::<Float64Type>().values().iter().copied()),
        DataType::Utf8 => strings(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => strings(array.as_string::<i64>().iter()),
        DataType::Utf8View => strings(array.as_string_view().iter()),
        DataType::List(_) => lists(array.as_list::<i32>()),
        DataType::LargeList(_) => lists(array.as_list::<i64>()),
        DataType::Struct(fields) => {
            let a = array.as_struct();
            let mut children: Vec<_> = a.columns().iter().map(|c| values(c.as_ref()).into_iter()).collect();
            (0..n)
                .map(|_| {
                    let mut object = Map::with_capacity(fields.len());
                    for (field, child) in fields.iter().zip(children.iter_mut()) {
                        object.insert(field.name().clone(), child.next().unwrap_or(Value::Null));
                    }
                    Value::Object(object)
                })
                .collect()
        }
        _ => vec![Value::Null; n],
    };
    if array.null_count() > 0 {
        for (i, value) in out.iter_mut().enumerate() {
            if array.is_null(i) {
                *value = Value::Null;
            }
        }
    }
    out
}

fn ints<T>(array: &dyn Array) -> Vec<Value>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    array.as_primitive::<T>().values().iter().map(|&v| Value::from(v.into())).collect()
}

fn floats(values: impl Iterator<Item = f64>) -> Vec<Value> {
    values.map(|v| Number::from_f64(v).map_or(Value::Null, Value::Number)).collect()
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Vec<Value> {
    values.map(|v| v.map_or(Value::Null, |s| Value::String(s.to_owned()))).collect()
}

fn lists<O: OffsetSizeTrait>(array: &arrow_array::GenericListArray<O>) -> Vec<Value> {
    let items = values(array.values().as_ref());
    array
        .offsets()
        .windows(2)
        .map(|w| {
            let (start, end) = (w[0].as_usize(), w[1].as_usize());
            Value::Array(items[start..end].to_vec())
        })
        .collect()
}
