//! The shipped language prompt sets (`config/prompts/{en,ru}/`, generated from
//! `texts.tsv` by `generate.sh`): every row has its WAVs and every WAV its row, the
//! say-fragments the interpreter asks for are all there, and each file loads as
//! audible 8 kHz mono µ-law of a sensible length.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use acd_media::wav::{load_wav, wav_info, WavEncoding};
use acd_media::{Codec, Prompt};

const LANGS: [&str; 2] = ["en", "ru"];
/// Names only one language has: English says "thousand" whatever the number, Russian
/// needs the feminine one/two and three forms of "thousand".
const EN_ONLY: [&str; 1] = ["thousand"];
const RU_ONLY: [&str; 5] = [
    "num_1_f",
    "num_2_f",
    "thousand_1",
    "thousand_2",
    "thousand_5",
];
/// The sample flow's prompts (config/acd.toml).
const FLOW_PROMPTS: [&str; 25] = [
    "welcome",
    "vip_welcome",
    "main_menu",
    "enter_order",
    "order_is",
    "status_processing",
    "status_shipped",
    "status_delivered",
    "order_not_found",
    "lookup_unavailable",
    "anything_else",
    "closed",
    "holiday",
    "night_menu",
    "transferring",
    "callback_confirm",
    "callback_confirm_keys",
    "enter_callback_number",
    "callback_booked",
    "leave_voicemail",
    "voicemail_saved",
    "invalid",
    "no_input",
    "goodbye",
    "queue_wait",
];
/// Language-neutral prompts generated next to the sets.
const NEUTRAL: [&str; 3] = ["choose_language", "beep", "ringback"];
/// Everything shipped in the sets together stays small (µ-law is 8 KB/s).
const MAX_TOTAL_BYTES: u64 = 3_000_000;

fn prompts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/prompts")
}

/// One row of texts.tsv: name and its text per language (`None` for "-").
struct Row {
    name: String,
    texts: [Option<String>; 2],
}

fn rows() -> Vec<Row> {
    let path = prompts_dir().join("texts.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') || line.starts_with("name\t") {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "texts.tsv:{}: want name, en, ru", i + 1);
        let text = |t: &str| (t != "-").then(|| t.to_string());
        assert!(
            !cols[1].is_empty() && !cols[2].is_empty(),
            "texts.tsv:{}: empty text (use \"-\" for none)",
            i + 1
        );
        rows.push(Row {
            name: cols[0].to_string(),
            texts: [text(cols[1]), text(cols[2])],
        });
    }
    rows
}

/// Names of the WAV files directly in `dir`.
fn wav_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The say-fragments both languages need (common.md's naming convention).
fn shared_fragments() -> Vec<String> {
    let mut names: Vec<String> = (0..10).map(|d| format!("digit_{d}")).collect();
    names.extend(["star".to_string(), "pound".to_string()]);
    names.extend((0..20).map(|n| format!("num_{n}")));
    names.extend((2..10).map(|t| format!("num_{}", t * 10)));
    names.extend((1..10).map(|h| format!("num_{}", h * 100)));
    names.extend((1..=12).map(|m| format!("month_{m}")));
    names.extend((1..=31).map(|d| format!("day_{d}")));
    names
}

fn load(path: &Path) -> Prompt {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let info = wav_info(&bytes).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert_eq!(
        (info.encoding, info.sample_rate, info.channels),
        (WavEncoding::G711(Codec::Pcmu), 8000, 1),
        "{path:?}"
    );
    load_wav(&bytes).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Checks length and level; returns the file's size.
fn check_audio(path: &Path) -> u64 {
    let p = load(path);
    let d = p.duration();
    assert!(
        d >= Duration::from_millis(200) && d <= Duration::from_secs(15),
        "{path:?}: {d:?}, want 0.2 s .. 15 s"
    );
    let peak = p
        .samples()
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0);
    // generate.sh normalises to -3 dBFS (23197); anything near silence is a broken file.
    assert!(
        peak > 8_000,
        "{path:?}: peak {peak}, the prompt is (nearly) silent"
    );
    let rms = (p
        .samples()
        .iter()
        .map(|&s| f64::from(s).powi(2))
        .sum::<f64>()
        / p.len() as f64)
        .sqrt();
    assert!(
        rms > 500.0,
        "{path:?}: RMS {rms:.0}, the prompt is (nearly) silent"
    );
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn texts_and_files_match() {
    let rows = rows();
    let names: BTreeSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), rows.len(), "texts.tsv names a prompt twice");
    for (i, lang) in LANGS.iter().enumerate() {
        let want: BTreeSet<String> = rows
            .iter()
            .filter(|r| r.texts[i].is_some())
            .map(|r| r.name.clone())
            .collect();
        let have = wav_names(&prompts_dir().join(lang));
        let missing: Vec<_> = want.difference(&have).collect();
        let extra: Vec<_> = have.difference(&want).collect();
        assert!(
            missing.is_empty(),
            "{lang}: no WAV for {missing:?}: run generate.sh"
        );
        assert!(
            extra.is_empty(),
            "{lang}: WAVs without a texts.tsv row: {extra:?}"
        );
    }
    // Only the documented single-language names lack a language.
    for r in &rows {
        let expect = match (
            EN_ONLY.contains(&r.name.as_str()),
            RU_ONLY.contains(&r.name.as_str()),
        ) {
            (true, _) => [true, false],
            (_, true) => [false, true],
            _ => [true, true],
        };
        let has = [r.texts[0].is_some(), r.texts[1].is_some()];
        assert_eq!(has, expect, "{}: languages (en, ru)", r.name);
    }
}

#[test]
fn say_fragments_and_flow_prompts_are_present() {
    let en = wav_names(&prompts_dir().join("en"));
    let ru = wav_names(&prompts_dir().join("ru"));
    for name in shared_fragments()
        .iter()
        .map(String::as_str)
        .chain(FLOW_PROMPTS)
    {
        assert!(en.contains(name), "en/{name}.wav missing");
        assert!(ru.contains(name), "ru/{name}.wav missing");
    }
    for name in EN_ONLY {
        assert!(en.contains(name), "en/{name}.wav missing");
    }
    for name in RU_ONLY {
        assert!(ru.contains(name), "ru/{name}.wav missing");
    }
    for name in NEUTRAL {
        assert!(
            prompts_dir().join(format!("{name}.wav")).is_file(),
            "{name}.wav missing"
        );
    }
}

#[test]
fn every_shipped_prompt_loads_and_is_audible() {
    let mut total = 0;
    let mut count = 0;
    for lang in LANGS {
        let dir = prompts_dir().join(lang);
        for name in wav_names(&dir) {
            total += check_audio(&dir.join(format!("{name}.wav")));
            count += 1;
        }
    }
    for name in NEUTRAL {
        total += check_audio(&prompts_dir().join(format!("{name}.wav")));
        count += 1;
    }
    eprintln!("{count} prompts, {total} bytes");
    assert!(total <= MAX_TOTAL_BYTES, "prompts take {total} bytes");
}

#[test]
fn beep_is_a_400ms_tone() {
    let p = load(&prompts_dir().join("beep.wav"));
    assert_eq!(p.duration(), Duration::from_millis(400));
    // 1 kHz at 8 kHz: a sign change every 4 samples, about 800 in 400 ms.
    let crossings = p
        .samples()
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    assert!(
        (760..=840).contains(&crossings),
        "{crossings} zero crossings"
    );
}
