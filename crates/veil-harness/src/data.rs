//! What the harness classifies: the test splits of the datasets Veil knows, rows of CSV files
//! and image files (PNG, PGM), fitted to a model's input shape.
//!
//! An image with the model's number of pixels at the model's pixel scale is used as it is; any
//! other image is converted to grey, resized to the model's height and width (bilinear, the
//! `image` crate's triangle filter) and its pixels rescaled to the model's `pixel_max`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use veil_nn::graph::Architecture;
use veil_nn::images::{fashion_mnist, FashionSplit, ImageSet};

/// A dataset with a test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DatasetName {
    /// The bundled 8x8 digits (359 test images, pixels 0..=16).
    Digits,
    /// Fashion-MNIST (10 000 test images of 28x28, pixels 0..=255).
    FashionMnist,
}

impl DatasetName {
    /// The name a model file records.
    pub fn file_name(self) -> &'static str {
        match self {
            DatasetName::Digits => "digits",
            DatasetName::FashionMnist => "fashion-mnist",
        }
    }

    /// The dataset a model file names, if Veil knows it.
    pub fn of_model(model: &veil_nn::Model) -> Option<DatasetName> {
        match model.dataset.as_str() {
            "digits" => Some(DatasetName::Digits),
            "fashion-mnist" => Some(DatasetName::FashionMnist),
            _ => None,
        }
    }

    /// The dataset `given`, or else the model's own dataset, or else the digits.
    pub fn choose(given: Option<DatasetName>, model: Option<&veil_nn::Model>) -> DatasetName {
        given
            .or_else(|| model.and_then(DatasetName::of_model))
            .unwrap_or(DatasetName::Digits)
    }

    /// The test split.
    pub fn test_set(self) -> Result<ImageSet> {
        Ok(match self {
            DatasetName::Digits => ImageSet::from_digits(&veil_nn::data::digits_split().test),
            DatasetName::FashionMnist => fashion_mnist(FashionSplit::Test)?,
        })
    }

    /// The training split (for calibration).
    pub fn train_set(self) -> Result<ImageSet> {
        Ok(match self {
            DatasetName::Digits => ImageSet::from_digits(&veil_nn::data::digits_split().train),
            DatasetName::FashionMnist => fashion_mnist(FashionSplit::Train)?,
        })
    }
}

/// One image to classify, before it is fitted to a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawImage {
    /// Pixels, channel-major then row-major.
    pub pixels: Vec<u8>,
    /// `(channels, height, width)`, or `None` for a CSV row (a flat list of pixels already
    /// at the model's scale).
    pub shape: Option<(usize, usize, usize)>,
    /// The pixel value of full intensity.
    pub pixel_max: u16,
    /// The label, when known.
    pub label: Option<u8>,
}

/// Images `range` of a dataset split, with their labels.
pub fn from_set(set: &ImageSet, range: std::ops::Range<usize>) -> Vec<RawImage> {
    range
        .map(|i| RawImage {
            pixels: set.image(i).to_vec(),
            shape: Some((set.channels, set.height, set.width)),
            pixel_max: set.pixel_max,
            label: Some(set.label(i) as u8),
        })
        .collect()
}

/// Reads an input file: a PNG or PGM image (by extension or content), or a CSV file of one image
/// per line (the model's number of pixels, optionally a label as one more field; a header line
/// starting with `p0` is skipped).
pub fn read_input(path: &Path) -> Result<Vec<RawImage>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() > 64 << 20 {
        bail!(
            "{}: {} bytes, more than 64 MiB",
            path.display(),
            bytes.len()
        );
    }
    let is_image =
        bytes.starts_with(b"\x89PNG") || bytes.starts_with(b"P2") || bytes.starts_with(b"P5");
    if is_image {
        return Ok(vec![
            read_image(&bytes).with_context(|| format!("decoding {}", path.display()))?
        ]);
    }
    let text = String::from_utf8(bytes).with_context(|| {
        format!(
            "{}: neither a PNG or PGM image nor a CSV text file",
            path.display()
        )
    })?;
    read_csv(&text).with_context(|| format!("reading {}", path.display()))
}

/// Decodes a PNG or PGM image to grey pixels of `0..=255` (16-bit images are scaled down).
pub fn read_image(bytes: &[u8]) -> Result<RawImage> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes));
    reader = reader.with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(8192);
    limits.max_image_height = Some(8192);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let img = reader.decode()?.into_luma8();
    let (w, h) = img.dimensions();
    Ok(RawImage {
        pixels: img.into_raw(),
        shape: Some((1, h as usize, w as usize)),
        pixel_max: 255,
        label: None,
    })
}

/// Parses CSV rows of pixels. A row keeps all its fields: [`fit`] decides from the model's
/// input size whether the last one is a label.
pub fn read_csv(text: &str) -> Result<Vec<RawImage>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (n == 0 && line.starts_with("p0")) {
            continue;
        }
        let pixels = line
            .split(',')
            .map(|f| f.trim().parse::<u8>())
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| anyhow::anyhow!("line {}: {e} (expected integers 0-255)", n + 1))?;
        if pixels.len() > 1 << 20 {
            bail!("line {}: {} fields", n + 1, pixels.len());
        }
        out.push(RawImage {
            pixels,
            shape: None,
            pixel_max: 0,
            label: None,
        });
    }
    if out.is_empty() {
        bail!("no images");
    }
    Ok(out)
}

/// The model's raw input pixels (`0..=pixel_max`, the input's shape) for one image, and its
/// label: a CSV row of the model's number of pixels (or one more field, the label), or an
/// image converted to grey, resized and rescaled.
pub fn fit(image: &RawImage, arch: &Architecture) -> Result<(Vec<u8>, Option<u8>)> {
    let want = arch.input;
    let n = want.len();
    let pm = arch.pixel_max;
    let Some((c, h, w)) = image.shape else {
        // A CSV row at the model's own scale.
        let (pixels, label) = match image.pixels.len() {
            m if m == n => (image.pixels.clone(), None),
            m if m == n + 1 => (image.pixels[..n].to_vec(), Some(image.pixels[n])),
            m => bail!(
                "a row of {m} fields: the model takes {n} pixels ({want}), optionally followed by a label"
            ),
        };
        if let Some(p) = pixels.iter().find(|&&p| u16::from(p) > pm) {
            bail!("pixel {p} is above the model's largest pixel value {pm}");
        }
        return Ok((pixels, label));
    };
    // The same number of pixels at the same scale: the model reads them in the same order
    // (an 8x8 digit for a flat 64-value input, say).
    if image.pixels.len() == n && image.pixel_max == pm {
        return Ok((image.pixels.clone(), image.label));
    }
    if want.channels != 1 {
        bail!(
            "the model takes {want} inputs: only grey images (one channel) are converted, and this image is {c}x{h}x{w}"
        );
    }
    if c != 1 || image.pixels.len() != h * w {
        bail!("a {c}x{h}x{w} image with {} pixels", image.pixels.len());
    }
    // To 0..=255 grey, resized, then to the model's scale.
    let src_max = u32::from(image.pixel_max.max(1));
    let grey: Vec<u8> = image
        .pixels
        .iter()
        .map(|&p| ((u32::from(p).min(src_max) * 255 + src_max / 2) / src_max) as u8)
        .collect();
    let buf = image::GrayImage::from_raw(w as u32, h as u32, grey)
        .context("image buffer of the wrong size")?;
    let resized = if (h, w) == (want.height, want.width) {
        buf
    } else {
        image::imageops::resize(
            &buf,
            want.width as u32,
            want.height as u32,
            image::imageops::FilterType::Triangle,
        )
    };
    let pixels = resized
        .into_raw()
        .into_iter()
        .map(|p| ((u32::from(p) * u32::from(pm) + 127) / 255) as u8)
        .collect();
    Ok((pixels, image.label))
}

/// Parses a range of test images: `7`, `0..10` (end excluded) or `0-9` (end included).
pub fn parse_range(s: &str, len: usize) -> Result<std::ops::Range<usize>> {
    let num = |t: &str| {
        t.trim()
            .parse::<usize>()
            .with_context(|| format!("bad range {s:?}"))
    };
    let past = |end: usize| {
        end.checked_add(1)
            .with_context(|| format!("bad range {s:?}"))
    };
    let r = if let Some((a, b)) = s.split_once("..") {
        num(a)?..num(b)?
    } else if let Some((a, b)) = s.split_once('-') {
        num(a)?..past(num(b)?)?
    } else {
        let a = num(s)?;
        a..past(a)?
    };
    if r.start >= r.end || r.end > len {
        bail!("range {s:?} is empty or beyond the {len} test images");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_nn::graph::{Op, Shape};

    fn arch(input: Shape, pixel_max: u16) -> Architecture {
        Architecture {
            input,
            input_bits: 4,
            pixel_max,
            ops: vec![Op::Dense {
                outputs: 2,
                weight_bits: 4,
                acc_bits: 12,
            }],
        }
    }

    #[test]
    fn csv_rows_fit_with_or_without_a_label() {
        let a = arch(Shape::flat(3), 16);
        let rows = read_csv("p0,p1,p2\n1,2,3\n4,5,16,7\n").unwrap();
        assert_eq!(fit(&rows[0], &a).unwrap(), (vec![1, 2, 3], None));
        assert_eq!(fit(&rows[1], &a).unwrap(), (vec![4, 5, 16], Some(7)));
        assert!(fit(&read_csv("1,2").unwrap()[0], &a).is_err());
        assert!(fit(&read_csv("1,2,17").unwrap()[0], &a).is_err());
        assert!(read_csv("1,x,3").is_err());
    }

    #[test]
    fn images_are_resized_and_rescaled() {
        let a = arch(Shape::image(1, 2, 2), 16);
        let img = RawImage {
            pixels: vec![255; 16],
            shape: Some((1, 4, 4)),
            pixel_max: 255,
            label: None,
        };
        assert_eq!(fit(&img, &a).unwrap().0, vec![16; 4]);
        // A PGM file decodes.
        let pgm = b"P5\n2 2\n255\n\x00\x40\x80\xff";
        let raw = read_image(pgm).unwrap();
        assert_eq!(raw.shape, Some((1, 2, 2)));
        assert_eq!(fit(&raw, &a).unwrap().0, vec![0, 4, 8, 16]);
        assert!(read_image(b"P5\n2 2\n255\n\x00").is_err());
    }

    #[test]
    fn ranges_parse_and_bad_ones_fail() {
        assert_eq!(parse_range("7", 10).unwrap(), 7..8);
        assert_eq!(parse_range("0..3", 10).unwrap(), 0..3);
        assert_eq!(parse_range("2-4", 10).unwrap(), 2..5);
        assert!(parse_range("3..3", 10).is_err());
        assert!(parse_range("0-10", 10).is_err());
        assert!(parse_range("x", 10).is_err());
        assert!(parse_range(&usize::MAX.to_string(), 10).is_err());
        assert!(parse_range(&format!("0-{}", usize::MAX), 10).is_err());
    }
}
