//! Voicemail files: a unique, safe name per recording and the WAV write
//! (8 kHz mono 16-bit PCM), done on a blocking thread by the media task.

use std::io::Write;
use std::path::Path;

use acd_media::wav::{write_wav, WavEncoding};

/// `<call id>-<token>.wav`, the call id reduced to `[A-Za-z0-9._-]` (no
/// path separators, no leading dot) so a hostile Call-ID cannot leave the
/// directory. The token is unique within the call.
pub fn file_name(call: &str, token: u64) -> String {
    let mut safe: String = call
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .take(96)
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        safe.insert(0, 'c');
    }
    format!("{safe}-{token}.wav")
}

/// Writes `samples` as a WAV file at `path`, creating its directory; the
/// file appears complete or not at all (written aside, then renamed).
pub fn write(path: &Path, samples: &[i16]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let part = path.with_extension("wav.part");
    let bytes = write_wav(samples, WavEncoding::Pcm16);
    let mut f = std::fs::File::create(&part)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&part, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_unique_per_token() {
        assert_eq!(file_name("abc-1@acd", 3), "abc-1_acd-3.wav");
        assert_eq!(file_name("../../etc/passwd", 1), "c.._.._etc_passwd-1.wav");
        assert_eq!(file_name("", 2), "c-2.wav");
        assert_ne!(file_name("x", 1), file_name("x", 2));
    }

    #[test]
    fn writes_a_loadable_wav_and_creates_the_directory() {
        let dir = std::env::temp_dir().join(format!("acd-vm-{}", std::process::id()));
        let path = dir.join("sub").join("a-1.wav");
        let samples: Vec<i16> = (0..800).map(|i| (i * 13) as i16).collect();
        write(&path, &samples).expect("written");
        let bytes = std::fs::read(&path).expect("read back");
        let info = acd_media::wav::wav_info(&bytes).expect("valid wav");
        assert_eq!(info.samples, 800);
        assert_eq!(info.encoding, WavEncoding::Pcm16);
        assert!(!path.with_extension("wav.part").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error() {
        let file = std::env::temp_dir().join(format!("acd-vm-file-{}", std::process::id()));
        std::fs::write(&file, b"x").expect("file");
        assert!(write(&file.join("a-1.wav"), &[1, 2, 3]).is_err());
        let _ = std::fs::remove_file(&file);
    }
}
