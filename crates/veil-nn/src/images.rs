//! Image datasets beyond the bundled digits: an [`ImageSet`] type for labelled images of any
//! size, a reader for the IDX file format, and Fashion-MNIST.
//!
//! **IDX** is the format of the MNIST database (LeCun, Cortes and Burges, "The MNIST database
//! of handwritten digits", <http://yann.lecun.com/exdb/mnist/>): a big-endian header, then the
//! data. An image file starts with the magic number `0x00000803` (unsigned bytes, 3 dimensions)
//! and the image count, row count and column count as `u32`, followed by `count * rows * cols`
//! pixels, image after image, each row-major. A label file starts with `0x00000801` (unsigned
//! bytes, 1 dimension) and the label count, followed by one byte per label. The files are usually
//! shipped gzip-compressed; [`load_idx_pair`] accepts either form.
//!
//! **Fashion-MNIST** (Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
//! Benchmarking Machine Learning Algorithms", 2017, arXiv:1708.07747; MIT licence, Zalando
//! Research) is a drop-in replacement for MNIST: 60 000 training and 10 000 test images of
//! 28x28 grey pixels (`0..=255`) in 10 classes of clothing. [`fashion_mnist`] finds the files
//! of a split (see [`fashion_mnist_search_dirs`]; the test split is committed under
//! `data/fashion-mnist/`, the training split comes from the Debian package
//! `dataset-fashion-mnist`) and checks the SHA-256 of their decompressed contents, so a
//! re-compressed copy still verifies but altered data does not.
//!
//! Every input is bounded before anything is allocated for it: no file, compressed or not, is
//! read past [`MAX_IDX_BYTES`] plus its header, and a header that declares more data is refused.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::data::{self, Dataset};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;
/// Length of an IDX images header: magic, count, rows, columns.
pub const IDX_IMAGES_HEADER: usize = 16;
/// Length of an IDX labels header: magic, count.
pub const IDX_LABELS_HEADER: usize = 8;
/// Most data bytes (pixels or labels) one IDX file may hold: 256 MiB.
pub const MAX_IDX_BYTES: usize = 1 << 28;
/// Number of classes of the MNIST-family datasets that [`load_idx_pair`] reads.
pub const IDX_CLASSES: usize = 10;
/// Environment variable naming a directory that holds the Fashion-MNIST files.
pub const FASHION_MNIST_ENV: &str = "VEIL_FASHION_MNIST";
/// Where the Debian package `dataset-fashion-mnist` installs the files.
pub const FASHION_MNIST_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The copy in this repository (test split only).
pub const FASHION_MNIST_REPO_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/fashion-mnist");

/// Fashion-MNIST class names, indexed by label.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// SHA-256 of the decompressed `train-images-idx3-ubyte` (47 040 016 bytes).
pub const FASHION_TRAIN_IMAGES_SHA256: [u8; 32] =
    hex32("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888");
/// SHA-256 of the decompressed `train-labels-idx1-ubyte` (60 008 bytes).
pub const FASHION_TRAIN_LABELS_SHA256: [u8; 32] =
    hex32("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9");
/// SHA-256 of the decompressed `t10k-images-idx3-ubyte` (7 840 016 bytes).
pub const FASHION_TEST_IMAGES_SHA256: [u8; 32] =
    hex32("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b");
/// SHA-256 of the decompressed `t10k-labels-idx1-ubyte` (10 008 bytes).
pub const FASHION_TEST_LABELS_SHA256: [u8; 32] =
    hex32("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34");

/// Decodes 64 hexadecimal digits at compile time (a bad constant fails the build).
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hexadecimal digit"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64, "a SHA-256 digest has 64 hexadecimal digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Lowercase hexadecimal form of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Labelled images of one shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// Channels per image (1 for grey).
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// Largest pixel value (16 for the digits, 255 for IDX files).
    pub pixel_max: u16,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// Image-major pixels: image `i` is `pixels[i * C*H*W .. (i + 1) * C*H*W]`, channel-major,
    /// then row-major.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image, `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i`. Panics if `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The label of image `i`. Panics if `i >= self.len()`.
    pub fn label(&self, i: usize) -> usize {
        usize::from(self.labels[i])
    }

    /// The first `n` images (all of them when `n >= self.len()`), copied.
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            channels: self.channels,
            height: self.height,
            width: self.width,
            pixel_max: self.pixel_max,
            classes: self.classes,
            pixels: self.pixels[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Number of images of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// The bundled 8x8 digits (see [`crate::data`]) as an image set: one channel, 8x8,
    /// pixels `0..=16`, 10 classes, in the order of `d`.
    pub fn from_digits(d: &Dataset) -> ImageSet {
        let mut pixels = Vec::with_capacity(d.samples.len() * data::IMAGE_PIXELS);
        let mut labels = Vec::with_capacity(d.samples.len());
        for s in &d.samples {
            pixels.extend_from_slice(&s.pixels);
            labels.push(s.label);
        }
        ImageSet {
            channels: 1,
            height: 8,
            width: 8,
            pixel_max: u16::from(data::PIXEL_MAX),
            classes: data::NUM_CLASSES,
            pixels,
            labels,
        }
    }
}

/// Which of the two IDX file kinds an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    /// An images file (magic `0x00000803`).
    Images,
    /// A labels file (magic `0x00000801`).
    Labels,
}

impl fmt::Display for IdxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdxKind::Images => "IDX images file",
            IdxKind::Labels => "IDX labels file",
        })
    }
}

/// Why an IDX file or a Fashion-MNIST split could not be loaded.
#[derive(Debug, Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{path}: invalid gzip data: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// The file, compressed or decompressed, is longer than any valid IDX file may be.
    #[error("{path}: more than {limit} bytes (compressed or decompressed); refusing to read on")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The most bytes read.
        limit: usize,
    },
    /// The data is shorter than the header.
    #[error("{kind} of {len} bytes is shorter than its {need}-byte header")]
    HeaderTooShort {
        /// Images or labels.
        kind: IdxKind,
        /// Length of the data.
        len: usize,
        /// Length of the header.
        need: usize,
    },
    /// The magic number is not the expected one.
    #[error("{kind}: magic number {found:#010x}, expected {expected:#010x}")]
    BadMagic {
        /// Images or labels.
        kind: IdxKind,
        /// The magic number of that kind.
        expected: u32,
        /// The magic number found.
        found: u32,
    },
    /// An image dimension is zero.
    #[error("IDX images file declares images of {rows}x{cols} pixels; both must be positive")]
    EmptyImage {
        /// Rows declared.
        rows: u32,
        /// Columns declared.
        cols: u32,
    },
    /// The header declares more data than [`MAX_IDX_BYTES`].
    #[error("{kind} declares {declared} bytes of data, over the limit of {limit}")]
    TooLarge {
        /// Images or labels.
        kind: IdxKind,
        /// Data bytes the header declares.
        declared: u128,
        /// [`MAX_IDX_BYTES`].
        limit: usize,
    },
    /// The file ends before the data its header declares.
    #[error("{kind} is truncated: {found} bytes, its header declares {expected}")]
    Truncated {
        /// Images or labels.
        kind: IdxKind,
        /// Header plus declared data, in bytes.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// The file goes on after the data its header declares.
    #[error("{kind} has trailing bytes: {found} bytes, its header declares {expected}")]
    TrailingBytes {
        /// Images or labels.
        kind: IdxKind,
        /// Header plus declared data, in bytes.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// The images and labels files disagree on the number of examples.
    #[error("{images} images but {labels} labels")]
    CountMismatch {
        /// Images in the images file.
        images: usize,
        /// Labels in the labels file.
        labels: usize,
    },
    /// A label is not a valid class.
    #[error("label {label} of example {index} is not below the number of classes, {classes}")]
    LabelOutOfRange {
        /// 0-based example index.
        index: usize,
        /// The label.
        label: u8,
        /// Number of classes.
        classes: usize,
    },
    /// The decompressed contents do not have the expected SHA-256.
    #[error("{path}: SHA-256 of the decompressed contents is {found}, expected {expected}")]
    DigestMismatch {
        /// The file.
        path: PathBuf,
        /// Expected digest, hexadecimal.
        expected: String,
        /// Digest found, hexadecimal.
        found: String,
    },
    /// No directory searched holds both files of the split.
    #[error(
        "Fashion-MNIST {split} files ({images}[.gz], {labels}[.gz]) not found; searched: {}. \
         Install the Debian package `dataset-fashion-mnist` or set {env} to a directory \
         holding them",
        display_paths(.searched),
        images = .split.file_names().0,
        labels = .split.file_names().1,
        env = FASHION_MNIST_ENV
    )]
    NotFound {
        /// The split looked for.
        split: FashionSplit,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// An error in the contents of a named file.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<IdxError>,
    },
}

impl IdxError {
    /// The error itself, without the [`IdxError::InFile`] wrappers that name its file.
    pub fn innermost(&self) -> &IdxError {
        match self {
            IdxError::InFile { source, .. } => source.innermost(),
            other => other,
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing".to_string();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks that `bytes` is exactly a header of `header` bytes plus `declared` data bytes.
fn check_len(kind: IdxKind, bytes: &[u8], header: usize, declared: u128) -> Result<(), IdxError> {
    if declared > MAX_IDX_BYTES as u128 {
        return Err(IdxError::TooLarge {
            kind,
            declared,
            limit: MAX_IDX_BYTES,
        });
    }
    // Bounded by MAX_IDX_BYTES above, so the sum fits.
    let expected = header + declared as usize;
    if bytes.len() < expected {
        return Err(IdxError::Truncated {
            kind,
            expected,
            found: bytes.len(),
        });
    }
    if bytes.len() > expected {
        return Err(IdxError::TrailingBytes {
            kind,
            expected,
            found: bytes.len(),
        });
    }
    Ok(())
}

/// Checks the magic number (first, so that a file of the wrong kind is named as such) and that
/// the whole `need`-byte header is there.
fn check_header(kind: IdxKind, bytes: &[u8], need: usize, magic: u32) -> Result<(), IdxError> {
    let short = || IdxError::HeaderTooShort {
        kind,
        len: bytes.len(),
        need,
    };
    if bytes.len() < 4 {
        return Err(short());
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(IdxError::BadMagic {
            kind,
            expected: magic,
            found,
        });
    }
    if bytes.len() < need {
        return Err(short());
    }
    Ok(())
}

/// Parses an uncompressed IDX images file: returns `(count, rows, cols, pixels)`, the pixels
/// image after image, each row-major. The file must be exactly header plus data, with positive
/// dimensions and at most [`MAX_IDX_BYTES`] pixels.
pub fn parse_idx_images(bytes: &[u8]) -> Result<(usize, usize, usize, Vec<u8>), IdxError> {
    let kind = IdxKind::Images;
    check_header(kind, bytes, IDX_IMAGES_HEADER, IDX_IMAGES_MAGIC)?;
    let count = be_u32(bytes, 4);
    let rows = be_u32(bytes, 8);
    let cols = be_u32(bytes, 12);
    if rows == 0 || cols == 0 {
        return Err(IdxError::EmptyImage { rows, cols });
    }
    let declared = u128::from(count) * u128::from(rows) * u128::from(cols);
    check_len(kind, bytes, IDX_IMAGES_HEADER, declared)?;
    // All three are at most MAX_IDX_BYTES now (rows, cols >= 1), so they fit in usize.
    Ok((
        count as usize,
        rows as usize,
        cols as usize,
        bytes[IDX_IMAGES_HEADER..].to_vec(),
    ))
}

/// Parses an uncompressed IDX labels file: returns the labels. The file must be exactly header
/// plus data, with at most [`MAX_IDX_BYTES`] labels. Label values are not checked here.
pub fn parse_idx_labels(bytes: &[u8]) -> Result<Vec<u8>, IdxError> {
    let kind = IdxKind::Labels;
    check_header(kind, bytes, IDX_LABELS_HEADER, IDX_LABELS_MAGIC)?;
    let count = be_u32(bytes, 4);
    check_len(kind, bytes, IDX_LABELS_HEADER, u128::from(count))?;
    Ok(bytes[IDX_LABELS_HEADER..].to_vec())
}

/// Most bytes read from one file, compressed or decompressed: the largest valid IDX file.
const MAX_FILE_BYTES: usize = MAX_IDX_BYTES + IDX_IMAGES_HEADER;

/// Most bytes read from one file before decompression: gzip may exceed its contents by a few
/// bytes per 64 KiB stored block plus its header and trailer, never by more than this margin.
const MAX_COMPRESSED_BYTES: usize = MAX_FILE_BYTES + MAX_FILE_BYTES / 1024 + 1024;

/// Reads at most `limit` bytes from `r`; more is an error.
fn read_bounded(path: &Path, r: impl Read, limit: usize, gzip: bool) -> Result<Vec<u8>, IdxError> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let read = r.take(limit as u64 + 1).read_to_end(&mut out);
    if let Err(source) = read {
        let path = path.to_path_buf();
        return Err(if gzip {
            IdxError::Gzip { path, source }
        } else {
            IdxError::Io { path, source }
        });
    }
    if out.len() > limit {
        return Err(IdxError::FileTooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(out)
}

/// `bytes` decompressed if they start with the gzip magic, else as they are; at most `limit`
/// bytes either way. `path` only names the file in errors.
fn decompress_bounded(path: &Path, bytes: Vec<u8>, limit: usize) -> Result<Vec<u8>, IdxError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        read_bounded(path, MultiGzDecoder::new(bytes.as_slice()), limit, true)
    } else if bytes.len() > limit {
        Err(IdxError::FileTooLarge {
            path: path.to_path_buf(),
            limit,
        })
    } else {
        Ok(bytes)
    }
}

/// Reads a file, gzip-compressed or not, and returns its (decompressed) contents.
fn read_idx_file(path: &Path) -> Result<Vec<u8>, IdxError> {
    let file = std::fs::File::open(path).map_err(|source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let raw = read_bounded(path, file, MAX_COMPRESSED_BYTES, false)?;
    decompress_bounded(path, raw, MAX_FILE_BYTES)
}

fn check_digest(path: &Path, contents: &[u8], expected: &[u8; 32]) -> Result<(), IdxError> {
    let found: [u8; 32] = Sha256::digest(contents).into();
    if &found != expected {
        return Err(IdxError::DigestMismatch {
            path: path.to_path_buf(),
            expected: hex(expected),
            found: hex(&found),
        });
    }
    Ok(())
}

/// Builds the image set from the decompressed contents of an images and a labels file.
/// `paths` only name the files in errors.
fn decode_pair(
    paths: (&Path, &Path),
    images: &[u8],
    labels: &[u8],
    expected: Option<([u8; 32], [u8; 32])>,
) -> Result<ImageSet, IdxError> {
    if let Some((want_images, want_labels)) = &expected {
        check_digest(paths.0, images, want_images)?;
        check_digest(paths.1, labels, want_labels)?;
    }
    let in_file = |path: &Path| {
        let path = path.to_path_buf();
        move |e: IdxError| IdxError::InFile {
            path,
            source: Box::new(e),
        }
    };
    let (count, rows, cols, pixels) = parse_idx_images(images).map_err(in_file(paths.0))?;
    let labels = parse_idx_labels(labels).map_err(in_file(paths.1))?;
    if labels.len() != count {
        return Err(IdxError::CountMismatch {
            images: count,
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= IDX_CLASSES)
    {
        return Err(in_file(paths.1)(IdxError::LabelOutOfRange {
            index,
            label,
            classes: IDX_CLASSES,
        }));
    }
    Ok(ImageSet {
        channels: 1,
        height: rows,
        width: cols,
        pixel_max: 255,
        classes: IDX_CLASSES,
        pixels,
        labels,
    })
}

/// Loads an IDX images file and its labels file (each gzip-compressed or not) of an
/// MNIST-family dataset: one channel, pixels `0..=255`, [`IDX_CLASSES`] classes.
///
/// With `expected = Some((images, labels))`, the SHA-256 of each file's decompressed contents
/// must equal the given digest. The counts must agree and every label must be below
/// [`IDX_CLASSES`].
pub fn load_idx_pair(
    images: &Path,
    labels: &Path,
    expected: Option<([u8; 32], [u8; 32])>,
) -> Result<ImageSet, IdxError> {
    let image_bytes = read_idx_file(images)?;
    let label_bytes = read_idx_file(labels)?;
    decode_pair((images, labels), &image_bytes, &label_bytes, expected)
}

/// A split of Fashion-MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FashionSplit {
    /// 60 000 training images (`train-*`).
    Train,
    /// 10 000 test images (`t10k-*`).
    Test,
}

impl FashionSplit {
    /// The uncompressed file names of the split: (images, labels).
    pub fn file_names(self) -> (&'static str, &'static str) {
        match self {
            FashionSplit::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            FashionSplit::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    }

    /// SHA-256 of the split's decompressed (images, labels) files.
    pub fn sha256(self) -> ([u8; 32], [u8; 32]) {
        match self {
            FashionSplit::Train => (FASHION_TRAIN_IMAGES_SHA256, FASHION_TRAIN_LABELS_SHA256),
            FashionSplit::Test => (FASHION_TEST_IMAGES_SHA256, FASHION_TEST_LABELS_SHA256),
        }
    }

    /// Number of images in the split.
    pub fn count(self) -> usize {
        match self {
            FashionSplit::Train => 60_000,
            FashionSplit::Test => 10_000,
        }
    }
}

impl fmt::Display for FashionSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FashionSplit::Train => "training",
            FashionSplit::Test => "test",
        })
    }
}

/// The directories [`fashion_mnist`] searches, in order: `$VEIL_FASHION_MNIST` if set, this
/// repository's `data/fashion-mnist/`, then [`FASHION_MNIST_SYSTEM_DIR`].
pub fn fashion_mnist_search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(FASHION_MNIST_ENV) {
        if !dir.is_empty() {
            dirs.push(PathBuf::from(dir));
        }
    }
    dirs.push(PathBuf::from(FASHION_MNIST_REPO_DIR));
    dirs.push(PathBuf::from(FASHION_MNIST_SYSTEM_DIR));
    dirs
}

/// `dir/name.gz` if it exists, else `dir/name` if it exists.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The paths of the (images, labels) files of `split` in the first directory of
/// [`fashion_mnist_search_dirs`] that holds both, each `.gz` or uncompressed.
pub fn find_fashion_mnist(split: FashionSplit) -> Result<(PathBuf, PathBuf), IdxError> {
    let (images, labels) = split.file_names();
    let searched = fashion_mnist_search_dirs();
    for dir in &searched {
        if let (Some(i), Some(l)) = (find_file(dir, images), find_file(dir, labels)) {
            return Ok((i, l));
        }
    }
    Err(IdxError::NotFound { split, searched })
}

/// Loads a Fashion-MNIST split (see [`find_fashion_mnist`] for where it is looked for) and
/// verifies the SHA-256 of both files' decompressed contents.
pub fn fashion_mnist(split: FashionSplit) -> Result<ImageSet, IdxError> {
    let (images, labels) = find_fashion_mnist(split)?;
    load_idx_pair(&images, &labels, Some(split.sha256()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IDX_IMAGES_MAGIC, count, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    /// Three 2x3 images and their labels.
    fn small() -> (Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..18).map(|i| i * 10).collect();
        (idx_images(3, 2, 3, &pixels), idx_labels(&[7, 0, 9]))
    }

    fn decode(images: &[u8], labels: &[u8]) -> Result<ImageSet, IdxError> {
        decode_pair(
            (Path::new("images"), Path::new("labels")),
            images,
            labels,
            None,
        )
    }

    fn repo_file(name: &str) -> PathBuf {
        Path::new(FASHION_MNIST_REPO_DIR).join(name)
    }

    #[test]
    fn committed_test_split_loads_and_verifies() {
        let set = load_idx_pair(
            &repo_file("t10k-images-idx3-ubyte.gz"),
            &repo_file("t10k-labels-idx1-ubyte.gz"),
            Some(FashionSplit::Test.sha256()),
        )
        .unwrap();
        assert_eq!(set.len(), 10_000);
        assert_eq!((set.channels, set.height, set.width), (1, 28, 28));
        assert_eq!(set.pixels.len(), 10_000 * 784);
        assert_eq!((set.pixel_max, set.classes), (255, 10));
        assert_eq!(set.class_counts(), vec![1000; 10]);
        // The first test image is an ankle boot, the second a pullover.
        assert_eq!((set.label(0), set.label(1)), (9, 2));
        assert_eq!(set.image(1).len(), 784);

        // The search finds a copy too (the repository's, unless the environment names another
        // valid one) and it is the same data.
        let found = fashion_mnist(FashionSplit::Test).unwrap();
        assert_eq!(found, set);

        let head = set.take(5);
        assert_eq!(head.len(), 5);
        assert_eq!(head.pixels, set.pixels[..5 * 784]);
        assert_eq!(set.take(20_000).len(), 10_000);
    }

    #[test]
    fn training_split_loads_when_installed() {
        match fashion_mnist(FashionSplit::Train) {
            Ok(set) => {
                assert_eq!(set.len(), FashionSplit::Train.count());
                assert_eq!(set.class_counts(), vec![6000; 10]);
            }
            Err(IdxError::NotFound { .. }) => {
                eprintln!("Fashion-MNIST training split not installed; skipped");
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn small_pair_parses() {
        let (images, labels) = small();
        let set = decode(&images, &labels).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!((set.height, set.width), (2, 3));
        assert_eq!(set.image(1), &[60, 70, 80, 90, 100, 110]);
        assert_eq!(set.labels, vec![7, 0, 9]);
        assert_eq!(parse_idx_images(&images).unwrap().0, 3);
        assert_eq!(parse_idx_labels(&labels).unwrap(), vec![7, 0, 9]);
        // No images is a valid, empty file.
        let empty = decode(&idx_images(0, 28, 28, &[]), &idx_labels(&[])).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn truncated_and_trailing_are_refused() {
        let (images, labels) = small();
        let cut = &images[..images.len() - 1];
        assert!(matches!(
            parse_idx_images(cut),
            Err(IdxError::Truncated {
                kind: IdxKind::Images,
                expected: 34,
                found: 33
            })
        ));
        let mut long = images.clone();
        long.push(0);
        assert!(matches!(
            parse_idx_images(&long),
            Err(IdxError::TrailingBytes {
                kind: IdxKind::Images,
                expected: 34,
                found: 35
            })
        ));
        let mut long = labels.clone();
        long.push(1);
        assert!(matches!(
            parse_idx_labels(&long),
            Err(IdxError::TrailingBytes {
                kind: IdxKind::Labels,
                ..
            })
        ));
        assert!(matches!(
            parse_idx_labels(&labels[..labels.len() - 2]),
            Err(IdxError::Truncated {
                kind: IdxKind::Labels,
                ..
            })
        ));
        assert!(matches!(
            parse_idx_images(&images[..10]),
            Err(IdxError::HeaderTooShort {
                need: 16,
                len: 10,
                ..
            })
        ));
        assert!(matches!(
            parse_idx_labels(&[]),
            Err(IdxError::HeaderTooShort {
                need: 8,
                len: 0,
                ..
            })
        ));
        // Through the pair loader the error names the file.
        let err = decode(cut, &labels).unwrap_err();
        assert!(matches!(err.innermost(), IdxError::Truncated { .. }));
        assert!(err
            .to_string()
            .starts_with("images: IDX images file is truncated"));
    }

    #[test]
    fn wrong_magic_is_refused() {
        let (images, labels) = small();
        // Each file's magic in the other's place.
        assert!(matches!(
            parse_idx_images(&labels),
            Err(IdxError::BadMagic {
                kind: IdxKind::Images,
                expected: 0x803,
                found: 0x801
            })
        ));
        assert!(matches!(
            parse_idx_labels(&images),
            Err(IdxError::BadMagic {
                kind: IdxKind::Labels,
                expected: 0x801,
                found: 0x803
            })
        ));
        let err = parse_idx_labels(&images).unwrap_err().to_string();
        assert!(
            err.contains("0x00000803") && err.contains("0x00000801"),
            "{err}"
        );
    }

    #[test]
    fn oversized_and_empty_headers_are_refused_before_allocating() {
        // 2^32-1 images of 2^16 x 2^16: far past the limit, and u32 products overflow.
        let huge = idx_images(u32::MAX, 1 << 16, 1 << 16, &[]);
        assert!(matches!(
            parse_idx_images(&huge),
            Err(IdxError::TooLarge {
                kind: IdxKind::Images,
                ..
            })
        ));
        let mut labels = idx_labels(&[]);
        labels[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_idx_labels(&labels),
            Err(IdxError::TooLarge {
                kind: IdxKind::Labels,
                ..
            })
        ));
        assert!(matches!(
            parse_idx_images(&idx_images(1, 0, 28, &[])),
            Err(IdxError::EmptyImage { rows: 0, cols: 28 })
        ));
    }

    #[test]
    fn label_count_mismatch_and_range() {
        let (images, _) = small();
        assert!(matches!(
            decode(&images, &idx_labels(&[1, 2])),
            Err(IdxError::CountMismatch {
                images: 3,
                labels: 2
            })
        ));
        let err = decode(&images, &idx_labels(&[1, 10, 2])).unwrap_err();
        assert!(matches!(
            err.innermost(),
            IdxError::LabelOutOfRange {
                index: 1,
                label: 10,
                classes: 10
            }
        ));
        assert!(err.to_string().starts_with("labels: "), "{err}");
    }

    #[test]
    fn wrong_digest_is_refused() {
        let (images, labels) = small();
        let paths = (Path::new("a-images"), Path::new("a-labels"));
        let right = (sha(&images), sha(&labels));
        assert!(decode_pair(paths, &images, &labels, Some(right)).is_ok());
        let mut wrong = right;
        wrong.1[0] ^= 1;
        let err = decode_pair(paths, &images, &labels, Some(wrong)).unwrap_err();
        match &err {
            IdxError::DigestMismatch {
                path,
                expected,
                found,
            } => {
                assert_eq!(path, Path::new("a-labels"));
                assert_eq!(expected, &hex(&wrong.1));
                assert_eq!(found, &hex(&right.1));
            }
            other => panic!("{other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("a-labels") && msg.contains(&hex(&right.1)),
            "{msg}"
        );
    }

    #[test]
    fn files_gzip_or_plain_and_digest_of_decompressed() {
        let dir = std::env::temp_dir().join(format!("veil-idx-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (images, labels) = small();
        let digests = Some((sha(&images), sha(&labels)));
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let plain = (write("i", &images), write("l", &labels));
        let fast = (
            write("i1.gz", &gzip(&images, 1)),
            write("l1.gz", &gzip(&labels, 1)),
        );
        let best = (
            write("i9.gz", &gzip(&images, 9)),
            write("l9.gz", &gzip(&labels, 9)),
        );
        let a = load_idx_pair(&plain.0, &plain.1, digests).unwrap();
        let b = load_idx_pair(&fast.0, &fast.1, digests).unwrap();
        let c = load_idx_pair(&best.0, &best.1, digests).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);

        // A corrupt gzip stream and a missing file are errors, not panics.
        let mut bad = gzip(&images, 6);
        let n = bad.len();
        bad.truncate(n - 6);
        let bad = write("bad.gz", &bad);
        assert!(matches!(
            load_idx_pair(&bad, &plain.1, None),
            Err(IdxError::Gzip { .. })
        ));
        assert!(matches!(
            load_idx_pair(&dir.join("missing"), &plain.1, None),
            Err(IdxError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn decompression_is_bounded() {
        let zeros = vec![0u8; 10_000];
        let gz = gzip(&zeros, 9);
        assert!(gz.len() < 100);
        let p = Path::new("bomb.gz");
        assert!(matches!(
            decompress_bounded(p, gz.clone(), 1000),
            Err(IdxError::FileTooLarge { limit: 1000, .. })
        ));
        assert_eq!(decompress_bounded(p, gz, 10_000).unwrap(), zeros);
        assert!(matches!(
            decompress_bounded(p, zeros, 9_999),
            Err(IdxError::FileTooLarge { .. })
        ));
    }

    #[test]
    fn not_found_names_every_place() {
        let err = IdxError::NotFound {
            split: FashionSplit::Train,
            searched: vec![PathBuf::from("/x/one"), PathBuf::from("/y/two")],
        };
        let msg = err.to_string();
        for part in [
            "/x/one",
            "/y/two",
            "train-images-idx3-ubyte",
            "dataset-fashion-mnist",
            FASHION_MNIST_ENV,
        ] {
            assert!(msg.contains(part), "{msg}");
        }
        let dirs = fashion_mnist_search_dirs();
        assert!(dirs.ends_with(&[
            PathBuf::from(FASHION_MNIST_REPO_DIR),
            PathBuf::from(FASHION_MNIST_SYSTEM_DIR)
        ]));
    }

    #[test]
    fn from_digits_round_trip() {
        let digits = data::digits();
        let set = ImageSet::from_digits(&digits);
        assert_eq!(set.len(), digits.samples.len());
        assert_eq!((set.channels, set.height, set.width), (1, 8, 8));
        assert_eq!((set.pixel_max, set.classes), (16, 10));
        for (i, s) in digits.samples.iter().enumerate() {
            assert_eq!(set.image(i), &s.pixels[..]);
            assert_eq!(set.label(i), usize::from(s.label));
        }
        assert_eq!(ImageSet::from_digits(&Dataset::default()).len(), 0);
    }

    #[test]
    fn digest_constants_decode() {
        assert_eq!(hex(&FASHION_TEST_LABELS_SHA256)[..8], *"0402a96d");
        assert_eq!(FASHION_TRAIN_IMAGES_SHA256[31], 0x88);
    }
}
