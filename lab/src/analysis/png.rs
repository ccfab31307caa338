//! The PNG backend of `lab plot`: plotters' [`BitMapBackend`] for every
//! shape, with text drawn here by `ab_glyph` from the embedded font.
//!
//! plotters 0.3.7 draws `ab_glyph` text without each glyph's left side
//! bearing, so letters sit unevenly ("can onical"); this backend places each
//! glyph at its pen position plus its bearing, with kerning. Text is
//! measured as plotters measures it (the same font, the same scale), so
//! layouts match the SVG charts.

use std::path::Path;

use ab_glyph::{point, Font, FontRef, InvalidFont, PxScale, ScaleFont};
use plotters::backend::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// A PNG file of a given size, written on [`DrawingBackend::present`].
pub struct PngBackend<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
}

impl<'a> PngBackend<'a> {
    /// A `size` (width, height in pixels) PNG at `path`, its text drawn
    /// with `font` (TrueType or OpenType bytes).
    ///
    /// # Errors
    /// `font` does not parse.
    pub fn new(path: &'a Path, size: (u32, u32), font: &'static [u8]) -> Result<Self, InvalidFont> {
        Ok(PngBackend {
            inner: BitMapBackend::new(path, size),
            font: FontRef::try_from_slice(font)?,
        })
    }
}

type Error = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

impl DrawingBackend for PngBackend<'_> {
    type ErrorType = Error;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Error>> {
        self.inner.estimate_text_size(text, style)
    }

    /// `text` at `pos` (its anchor), in the style's size, colour and
    /// rotation: glyphs laid out along the baseline by advance and kerning,
    /// each drawn at its outline's pixel bounds with coverage as alpha.
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Error>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        // The scale plotters measures text with (`estimate_text_size`).
        let scale = PxScale::from(style.size() as f32);
        let font = self.font.as_scaled(scale);
        let mut pen = 0f32;
        let mut prev = None;
        let mut glyphs = Vec::new();
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(scale, point(pen, 0.0)));
            pen += font.h_advance(id);
            prev = Some(id);
        }
        let (ascent, descent) = (font.ascent(), font.descent());
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -pen / 2.0,
            HPos::Right => -pen,
        };
        // The baseline, from the anchor: the text's box runs from the
        // ascent above it to the descent below it.
        let baseline = match style.anchor().v_pos {
            VPos::Top => ascent,
            VPos::Center => (ascent + descent) / 2.0,
            VPos::Bottom => descent,
        };
        let transform = style.transform();
        let mut pixels = Vec::new();
        for glyph in glyphs {
            let Some(outline) = self.font.outline_glyph(glyph) else {
                continue; // a space
            };
            let bounds = outline.px_bounds();
            outline.draw(|x, y, coverage| {
                if coverage > 0.0 {
                    let lx = (bounds.min.x + x as f32 + dx).round() as i32;
                    let ly = (bounds.min.y + y as f32 + baseline).round() as i32;
                    pixels.push((transform.transform(lx, ly), coverage));
                }
            });
        }
        for ((x, y), coverage) in pixels {
            self.inner.draw_pixel(
                (pos.0 + x, pos.1 + y),
                BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                },
            )?;
        }
        Ok(())
    }
}
