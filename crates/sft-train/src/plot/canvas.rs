//! An 8-bit RGB raster with the few primitives the loss curve needs: filled rectangles, thick Bresenham lines,
//! bitmap text (horizontal and rotated a quarter turn), and PNG encoding. Coordinates are pixels with (0, 0) at the
//! top left; anything outside the canvas or the clip rectangle is dropped, never an error.

use super::font::{ADVANCE, CAP_HEIGHT, GLYPH_HEIGHT, GLYPH_WIDTH, glyph, is_set};

/// An 8-bit sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rgb(pub u8, pub u8, pub u8);

/// A pixel rectangle, bounds inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rect {
    pub left: i64,
    pub top: i64,
    pub right: i64,
    pub bottom: i64,
}

impl Rect {
    fn contains(&self, x: i64, y: i64) -> bool {
        (self.left..=self.right).contains(&x) && (self.top..=self.bottom).contains(&y)
    }
}

/// A row-major RGB image.
#[derive(Debug, Clone)]
pub(super) struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    clip: Rect,
}

impl Canvas {
    /// A `width` × `height` canvas filled with `background`, clipped to itself.
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        let pixels = [background.0, background.1, background.2].repeat(width * height);
        Self { width, height, pixels, clip: Self::full(width, height) }
    }

    fn full(width: usize, height: usize) -> Rect {
        Rect { left: 0, top: 0, right: width as i64 - 1, bottom: height as i64 - 1 }
    }

    /// Restricts drawing to `clip` (intersected with the canvas); `None` lifts the restriction.
    pub fn set_clip(&mut self, clip: Option<Rect>) {
        let full = Self::full(self.width, self.height);
        self.clip = match clip {
            Some(c) => Rect {
                left: c.left.max(0),
                top: c.top.max(0),
                right: c.right.min(full.right),
                bottom: c.bottom.min(full.bottom),
            },
            None => full,
        };
    }

    /// Sets one pixel (dropped outside the clip rectangle).
    pub fn put(&mut self, x: i64, y: i64, color: Rgb) {
        if !self.clip.contains(x, y) {
            return;
        }
        // Inside the clip rectangle, so inside the canvas: both coordinates are non-negative and in range.
        let i = (y as usize * self.width + x as usize) * 3;
        if let Some(p) = self.pixels.get_mut(i..i + 3) {
            p.copy_from_slice(&[color.0, color.1, color.2]);
        }
    }

    /// Fills `rect` (inclusive bounds).
    pub fn fill(&mut self, rect: Rect, color: Rgb) {
        let (left, right) = (rect.left.max(self.clip.left), rect.right.min(self.clip.right));
        let (top, bottom) = (rect.top.max(self.clip.top), rect.bottom.min(self.clip.bottom));
        for y in top..=bottom {
            for x in left..=right {
                self.put(x, y, color);
            }
        }
    }

    /// A `side` × `side` square centred on (`x`, `y`) (for an even side, the extra pixel is right / below).
    pub fn square(&mut self, x: i64, y: i64, side: i64, color: Rgb) {
        let before = (side - 1) / 2;
        let after = side - 1 - before;
        self.fill(Rect { left: x - before, top: y - before, right: x + after, bottom: y + after }, color);
    }

    /// A line from (`x0`, `y0`) to (`x1`, `y1`), both ends included, `width` pixels thick: Bresenham's line with a
    /// `width` × `width` square stamped at every step.
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), width: i64, color: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut error) = (x0, y0, dx + dy);
        loop {
            self.square(x, y, width, color);
            if x == x1 && y == y1 {
                break;
            }
            let twice = 2 * error;
            if twice >= dy {
                error += dy;
                x += sx;
            }
            if twice <= dx {
                error += dx;
                y += sy;
            }
        }
    }

    /// The width in pixels of `text` drawn at `scale` (font pixels are `scale` × `scale` squares).
    pub fn text_width(text: &str, scale: i64) -> i64 {
        let n = text.chars().count() as i64;
        if n == 0 { 0 } else { (n * ADVANCE as i64 - 1) * scale }
    }

    /// The height in pixels of text at `scale` above its baseline (a descender reaches one font pixel below).
    pub fn text_height(scale: i64) -> i64 {
        CAP_HEIGHT as i64 * scale
    }

    /// `text` left to right with its top-left corner at (`x`, `y`). A character the font lacks is drawn as a
    /// hollow box.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb) {
        self.glyphs(text, scale, color, |column, row| (x + column, y + row));
    }

    /// `text` rotated a quarter turn counter-clockwise (reading bottom to top), with the bottom-left corner of its
    /// first glyph (before rotation: the top-left) at (`x`, `y`): it occupies columns `x..x + 8 · scale` (the
    /// glyph rows, descender included) and rows `y - text_width + 1..=y`.
    pub fn text_up(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb) {
        self.glyphs(text, scale, color, |column, row| (x + row, y - column));
    }

    /// Draws the glyphs of `text` through `place`, which maps an unrotated offset (column, row) from the text's
    /// top-left corner to a canvas pixel.
    fn glyphs(&mut self, text: &str, scale: i64, color: Rgb, place: impl Fn(i64, i64) -> (i64, i64)) {
        const MISSING: [u8; GLYPH_HEIGHT] = [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F, 0x00];
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c).unwrap_or(MISSING);
            let origin = (i * ADVANCE) as i64 * scale;
            for row in 0..GLYPH_HEIGHT {
                for column in (0..GLYPH_WIDTH).filter(|&column| is_set(&rows, column, row)) {
                    for (u, v) in (0..scale).flat_map(|u| (0..scale).map(move |v| (u, v))) {
                        let (px, py) = place(origin + column as i64 * scale + u, row as i64 * scale + v);
                        self.put(px, py, color);
                    }
                }
            }
        }
    }

    /// The image as an 8-bit RGB PNG.
    pub fn encode_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(bytes)
    }

    /// The colour at (`x`, `y`), `None` outside the canvas.
    #[cfg(test)]
    pub fn get(&self, x: i64, y: i64) -> Option<Rgb> {
        if !Self::full(self.width, self.height).contains(x, y) {
            return None;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        self.pixels.get(i..i + 3).map(|p| Rgb(p[0], p[1], p[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Rgb = Rgb(255, 255, 255);
    const K: Rgb = Rgb(0, 0, 0);

    fn set(canvas: &Canvas) -> Vec<(i64, i64)> {
        (0..canvas.height as i64)
            .flat_map(|y| (0..canvas.width as i64).map(move |x| (x, y)))
            .filter(|&(x, y)| canvas.get(x, y) == Some(K))
            .collect()
    }

    #[test]
    fn a_one_pixel_line_covers_each_column_once_between_its_ends() {
        let mut canvas = Canvas::new(12, 6, W);
        canvas.line((1, 1), (10, 4), 1, K);
        let pixels = set(&canvas);
        assert_eq!(pixels.len(), 10);
        assert_eq!(pixels.iter().map(|p| p.0).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
        assert!(pixels.contains(&(1, 1)) && pixels.contains(&(10, 4)));
    }

    #[test]
    fn a_two_pixel_vertical_line_is_two_columns_wide_and_clipped() {
        let mut canvas = Canvas::new(8, 8, W);
        canvas.set_clip(Some(Rect { left: 0, top: 2, right: 7, bottom: 5 }));
        canvas.line((3, 0), (3, 7), 2, K);
        let pixels = set(&canvas);
        assert_eq!(pixels.len(), 2 * 4);
        assert!(pixels.iter().all(|&(x, y)| (x == 3 || x == 4) && (2..=5).contains(&y)));
    }

    #[test]
    fn text_up_is_text_turned_a_quarter_counter_clockwise() {
        let (mut flat, mut up) = (Canvas::new(20, 20, W), Canvas::new(20, 20, W));
        flat.text(0, 0, "e1", 1, K);
        up.text_up(0, 19, "e1", 1, K);
        let turned: Vec<(i64, i64)> = set(&flat).into_iter().map(|(x, y)| (y, 19 - x)).collect();
        let mut expected = turned;
        expected.sort_by_key(|&(x, y)| (y, x));
        assert_eq!(set(&up), expected);
        assert_eq!(Canvas::text_width("e1", 1), 11);
    }
}
