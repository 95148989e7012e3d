//! A 5×7 bitmap font (plus a descender row) with just the characters the loss curve writes: digits, `.`, `-`,
//! `+`, space and the lowercase letters of "train loss", "eval loss" and "step" (and `e` of scientific tick
//! labels). The shapes are the classic HD44780 character-LCD ones.

/// Glyph width in font pixels.
pub(super) const GLYPH_WIDTH: usize = 5;
/// Glyph height in font pixels: 7 rows above the baseline (digits, capitals, ascenders) and one row for the
/// descender of `p`.
pub(super) const GLYPH_HEIGHT: usize = 8;
/// Rows above the baseline: the height to centre text by.
pub(super) const CAP_HEIGHT: usize = 7;
/// Horizontal distance from one glyph to the next, in font pixels (one column of spacing).
pub(super) const ADVANCE: usize = GLYPH_WIDTH + 1;

/// The rows of `c`, top to bottom; bit 4 of a row is the leftmost column, bit 0 the rightmost. `None` for a
/// character the font lacks.
pub(super) fn glyph(c: char) -> Option<[u8; GLYPH_HEIGHT]> {
    Some(match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E, 0x00],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F, 0x00],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E, 0x00],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02, 0x00],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E, 0x00],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E, 0x00],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E, 0x00],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00, 0x00],
        ' ' => [0x00; GLYPH_HEIGHT],
        'a' => [0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00],
        'e' => [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00],
        'i' => [0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0x00],
        'l' => [0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00],
        'o' => [0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00],
        'p' => [0x00, 0x00, 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00],
        's' => [0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E, 0x00],
        't' => [0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0x00],
        'v' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00],
        _ => return None,
    })
}

/// Whether font pixel (`column`, `row`) of `rows` is set (column 0 = left).
pub(super) fn is_set(rows: &[u8; GLYPH_HEIGHT], column: usize, row: usize) -> bool {
    rows[row] >> (GLYPH_WIDTH - 1 - column) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHARSET: &str = "0123456789.-+ aeilnoprstv";

    #[test]
    fn every_glyph_fits_five_columns_and_only_space_is_blank() {
        for c in CHARSET.chars() {
            let rows = glyph(c).unwrap();
            assert!(rows.iter().all(|&r| r < 1 << GLYPH_WIDTH), "{c:?} is wider than {GLYPH_WIDTH}");
            assert_eq!(rows.iter().all(|&r| r == 0), c == ' ', "{c:?}");
        }
        assert_eq!(glyph('#'), None);
    }

    #[test]
    fn the_strings_the_plot_writes_have_glyphs() {
        for text in ["train loss", "eval loss", "step", "loss", "-1.25e-5", "+0"] {
            assert!(text.chars().all(|c| glyph(c).is_some()), "{text}");
        }
    }

    #[test]
    fn is_set_reads_the_leftmost_column_from_bit_4() {
        let one = glyph('1').unwrap();
        // Row 0 of '1' is ..#.. ; row 6 is .###. ; row 7 (the descender row) is empty.
        assert_eq!((0..5).map(|c| is_set(&one, c, 0)).collect::<Vec<_>>(), [false, false, true, false, false]);
        assert_eq!((0..5).map(|c| is_set(&one, c, 6)).collect::<Vec<_>>(), [false, true, true, true, false]);
        assert!((0..5).all(|c| !is_set(&one, c, 7)));
        assert!(is_set(&glyph('p').unwrap(), 0, 7));
    }
}
