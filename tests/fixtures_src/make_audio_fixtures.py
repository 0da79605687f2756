#!/usr/bin/env python3
"""Audio fixtures and reference features for tests/unit/audio_test.cpp and features_test.cpp.

Synthesises three short utterances with espeak-ng, converts them with sox into the files of
tests/data/audio/ (8, 16, 44.1 and 48 kHz WAV, one FLAC, one stereo, one 24-bit and one float
WAV; OGG/Vorbis, Opus and MP3 for decoding checks only) and writes
tests/data/audio/expected_features.safetensors: the features deepspeech.pytorch
computes for each file (float32, bins x frames, one tensor per file stem).

The reference is deepspeech.pytorch's SpectrogramParser.parse_audio (deepspeech_pytorch/loader/
data_loader.py) with normalize=True and the default SpectConfig (16 kHz, 20 ms Hamming window,
10 ms hop), copied below without torch:
  load_audio:  soundfile.read(path, dtype='int16') / 32767, channels averaged
  librosa.stft(y, n_fft, hop_length, win_length=n_fft, window='hamming'): the window is passed by
               name, so librosa builds scipy.signal.get_window('hamming', n_fft, fftbins=True),
               the PERIODIC Hamming window; center=True
  np.log1p(np.abs(D)), then (x - mean) / std over the whole utterance with torch's std (n - 1)
Padding: librosa <= 0.8 padded with pad_mode='reflect', librosa >= 0.9.0 pads with zeros
('constant'). deepspeech.pytorch does not pin librosa; its released models (2020-2021) were trained
with librosa 0.8, so 'reflect' is the reference. It is computed as librosa 0.8 did it, np.pad of
the whole signal then uncentred frames (checked bitwise against librosa 0.8.1): librosa >= 0.10
asked for pad_mode='reflect' pads the tail on its own and differs in the last frame when the
length is a multiple of the hop. 'hello_16k.mid.constant' covers the newer default, on a cut
through the speech ('hello_16k.mid'), since the files begin and end in silence.
'hello_16k.mid.symmetric' has the symmetric window (scipy.signal.hamming(n_fft): deepspeech.pytorch's
older data/data_loader.py passed that function to librosa), 'hello_16k.mid.raw' no normalisation.

Files not at 16-bit / 16 kHz have no deepspeech.pytorch reference as such: it never resamples,
soundfile's int16 read of a 24-bit file drops the low 8 bits and that of a float WAV returns
unscaled -1/0/1 values. Their reference reads the file as float32, averages the channels,
resamples to 16 kHz with python-soxr at 'HQ' (the libsoxr setting ds2rt uses), multiplies by
32768/32767 (load_audio's scaling) and computes the same features. 'hello_16k_s24.int16' is
deepspeech.pytorch's own result for the 24-bit file (ds2rt's truncate_to_int16 option).

Made with: Python 3.11.7, numpy 2.4.6, scipy 1.17.1, librosa 0.11.0, soundfile 0.14.0
(libsndfile 1.2.2), soxr 1.1.0, safetensors, espeak-ng 1.51, sox 14.4.2 (Debian 12).
Run: python3 tests/fixtures_src/make_audio_fixtures.py   (from the repository root)
"""
import os
import subprocess
import tempfile

import librosa
import numpy as np
import scipy.signal
import soundfile as sf
import soxr
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "audio")
UTTERANCES = {"hello": "hello world", "door": "open the door", "numbers": "seven nine two"}
MODEL_RATE = 16000
MID_CUT = (3000, 11000)


def sh(*args):
    subprocess.run(args, check=True)


def load_audio(path):
    """deepspeech.pytorch's load_audio."""
    sound, _ = sf.read(path, dtype="int16")
    sound = sound.astype("float32") / 32767
    if sound.ndim > 1:
        sound = sound.mean(axis=1)
    return sound


def load_resampled(path):
    """Reference for files that are not 16-bit 16 kHz: float read, mean, soxr HQ, load_audio's scale."""
    y, rate = sf.read(path, dtype="float32")
    if y.ndim > 1:
        y = y.mean(axis=1)
    if rate != MODEL_RATE:
        y = soxr.resample(y, rate, MODEL_RATE, quality="HQ")
    return (y.astype(np.float64) * 32768 / 32767).astype(np.float32)


def features(y, window="hamming", pad_mode="reflect", normalize=True):
    """deepspeech.pytorch's SpectrogramParser.parse_audio (torch replaced by numpy)."""
    n_fft = int(MODEL_RATE * 0.02)
    hop_length = int(MODEL_RATE * 0.01)
    if pad_mode == "reflect":  # librosa <= 0.8's center=True
        y = np.pad(y, n_fft // 2, mode="reflect")
        d = librosa.stft(y, n_fft=n_fft, hop_length=hop_length, win_length=n_fft, window=window, center=False)
    else:
        d = librosa.stft(y, n_fft=n_fft, hop_length=hop_length, win_length=n_fft, window=window, pad_mode=pad_mode)
    spect, _ = librosa.magphase(d)
    spect = np.log1p(spect)
    if normalize:
        mean = np.float32(spect.mean(dtype=np.float64))
        std = np.float32(spect.std(dtype=np.float64, ddof=1))  # torch.std is unbiased
        spect = (spect - mean) / std
    return np.ascontiguousarray(spect, dtype=np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = {}
        for stem, text in UTTERANCES.items():
            src[stem] = os.path.join(tmp, stem + ".wav")  # espeak-ng writes 22050 Hz, 16-bit
            sh("espeak-ng", "-v", "en-us", "-w", src[stem], text)

        def convert(stem, name, *options):
            sh("sox", "-D", src[stem], *options, os.path.join(OUT, name))

        convert("hello", "hello_16k.wav", "-r", "16000", "-b", "16")
        convert("door", "door_16k.wav", "-r", "16000", "-b", "16")
        convert("numbers", "numbers_16k.flac", "-r", "16000", "-b", "16")
        convert("hello", "hello_16k_s24.wav", "-r", "16000", "-b", "24")
        convert("door", "door_16k_f32.wav", "-r", "16000", "-e", "floating-point", "-b", "32")
        convert("hello", "hello_8k.wav", "-r", "8000", "-b", "16")
        convert("door", "door_44k.wav", "-r", "44100", "-b", "16")
        convert("numbers", "numbers_48k.wav", "-r", "48000", "-b", "16")
        # Stereo: a different utterance on each channel (the shorter one padded with silence).
        sh("sox", "-D", "-M", src["hello"], src["door"], "-r", "16000", "-b", "16", os.path.join(OUT, "stereo_16k.wav"))

    # Lossy formats, written by libsndfile (through soundfile): decoding checks only.
    y, rate = sf.read(os.path.join(OUT, "hello_16k.wav"), dtype="float32")
    sf.write(os.path.join(OUT, "hello_16k.ogg"), y, rate, format="OGG", subtype="VORBIS")
    sf.write(os.path.join(OUT, "hello_16k.opus"), y, rate, format="OGG", subtype="OPUS")
    sf.write(os.path.join(OUT, "hello_16k.mp3"), y, rate, format="MP3", subtype="MPEG_LAYER_III")

    expected = {}
    for name in sorted(os.listdir(OUT)):
        stem, ext = os.path.splitext(name)
        if ext not in (".wav", ".flac"):
            continue
        path = os.path.join(OUT, name)
        info = sf.info(path)
        exact = info.samplerate == MODEL_RATE and info.subtype == "PCM_16"
        y = load_audio(path) if exact else load_resampled(path)
        expected[stem] = features(y)
    y = load_audio(os.path.join(OUT, "hello_16k.wav"))
    # The files begin and end in silence, where the padding makes no difference: a cut through
    # the speech (samples MID_CUT of hello_16k.wav, a multiple of the hop long) shows it.
    expected["hello_16k.mid"] = features(y[MID_CUT[0]:MID_CUT[1]])
    expected["hello_16k.mid.constant"] = features(y[MID_CUT[0]:MID_CUT[1]], pad_mode="constant")
    mid = y[MID_CUT[0]:MID_CUT[1]]
    expected["hello_16k.mid.symmetric"] = features(mid, window=scipy.signal.windows.hamming)  # a callable: sym=True
    expected["hello_16k.mid.raw"] = features(mid, normalize=False)
    # What deepspeech.pytorch itself computes for the 24-bit file: libsndfile's int16 read drops the low bits.
    expected["hello_16k_s24.int16"] = features(load_audio(os.path.join(OUT, "hello_16k_s24.wav")))
    versions = {"librosa": librosa.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                "soundfile": sf.__version__, "libsndfile": sf.__libsndfile_version__, "soxr": soxr.__version__}
    save_file(expected, os.path.join(OUT, "expected_features.safetensors"), metadata=versions)
    for k, v in expected.items():
        print(f"{k:24s} {v.shape}")


if __name__ == "__main__":
    main()
