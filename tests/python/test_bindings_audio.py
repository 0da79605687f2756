"""ds2rt's Python bindings for the audio front end: decoding, resampling and deepspeech.pytorch's
features (parity with the stored references), batching and errors."""
import json
from pathlib import Path

import numpy as np
import pytest

ds2rt = pytest.importorskip("ds2rt", reason="the ds2rt package is not installed (pip install . from the repo root)")

AUDIO = Path(__file__).resolve().parents[1] / "data" / "audio"


@pytest.fixture(scope="module")
def expected():
    return ds2rt.WeightStore.load(AUDIO / "expected_features.safetensors")


def relative_l2(ours, reference):
    return np.linalg.norm(ours - reference) / np.linalg.norm(reference)


@pytest.mark.parametrize("file", ["hello_16k.wav", "numbers_16k.flac", "stereo_16k.wav", "door_44k.wav"])
def test_features_match_deepspeech_pytorch(expected, file):
    features = ds2rt.FeatureExtractor(ds2rt.FeatureConfig())  # deepspeech.pytorch's defaults, 16 kHz
    ours = features.compute(ds2rt.load_audio(AUDIO / file, 16000))
    reference = expected[file.split(".")[0]]
    assert ours.shape == (1, 1) + reference.shape and ours.dtype == np.float32
    assert relative_l2(ours[0, 0], reference) < 1e-4


def test_audio_objects_bytes_samples_and_resampling():
    audio = ds2rt.load_audio(str(AUDIO / "hello_16k.wav"), target_rate=16000)
    assert audio.sample_rate == 16000 and len(audio) == audio.samples.size
    assert audio.seconds == pytest.approx(audio.samples.size / 16000)
    assert audio.samples.dtype == np.float32 and not audio.samples.flags.writeable
    from_bytes = ds2rt.decode_audio((AUDIO / "hello_16k.wav").read_bytes(), 16000, name="hello")
    np.testing.assert_array_equal(from_bytes.samples, audio.samples)

    pcm = np.round(audio.samples * 32768).clip(-32768, 32767).astype("<i2")
    stereo = np.repeat(pcm, 2)  # interleaved L, R
    raw = ds2rt.decode_pcm16(stereo.tobytes(), rate=16000, channels=2, target_rate=16000)
    np.testing.assert_allclose(raw.samples, pcm / 32768, atol=1e-7)
    np.testing.assert_allclose(ds2rt.mix_to_mono(np.stack([pcm, -pcm], 1).ravel() / 32768.0, 2), 0, atol=1e-7)

    made = ds2rt.Audio(audio.samples.astype(np.float64), 16000)
    np.testing.assert_array_equal(made.samples, audio.samples)
    down = ds2rt.resample(made, 8000)
    assert down.sample_rate == 8000 and abs(len(down) - len(audio) // 2) <= 1

    extractor = ds2rt.FeatureExtractor(ds2rt.FeatureConfig())
    np.testing.assert_array_equal(extractor.compute(audio.samples), extractor.compute(audio))
    extensions = {f.extension for f in ds2rt.audio_formats()}
    assert {"wav", "flac"} <= extensions


def test_feature_config():
    config = ds2rt.FeatureConfig.from_spectrogram_config(ds2rt.SpectrogramConfig(sample_rate=8000))
    assert (config.sample_rate, config.fft_size, config.hop_size, config.bins) == (8000, 160, 80, 81)
    assert config.frames(8000) == 101 and config.frames(0) == 0
    assert config.window == ds2rt.WindowType.HAMMING and config.pad_mode == ds2rt.PadMode.REFLECT
    custom = ds2rt.FeatureConfig(window=ds2rt.WindowType.HANN, pad_mode=ds2rt.PadMode.CONSTANT,
                                 normalization=ds2rt.Normalization.NONE, symmetric_window=True)
    custom.validate()
    n = 32
    np.testing.assert_allclose(ds2rt.make_window(ds2rt.WindowType.HAMMING, n), np.hamming(n + 1)[:-1], atol=1e-12)
    np.testing.assert_allclose(ds2rt.make_window(ds2rt.WindowType.HANN, n, symmetric=True), np.hanning(n), atol=1e-12)
    with pytest.raises(ds2rt.Error):
        ds2rt.FeatureConfig(window_size=-1.0).validate()


def test_global_normalization(tmp_path):
    (tmp_path / "stats.json").write_text(json.dumps({"mean": 0.5, "std": 2.0}))
    config = ds2rt.FeatureConfig()
    config.load_global_stats(tmp_path / "stats.json")
    assert config.normalization == ds2rt.Normalization.GLOBAL and config.mean == [0.5] and config.stddev == [2.0]
    audio = ds2rt.load_audio(AUDIO / "hello_16k.wav", 16000)
    raw = ds2rt.FeatureExtractor(ds2rt.FeatureConfig(normalization=ds2rt.Normalization.NONE)).compute(audio)
    np.testing.assert_allclose(ds2rt.FeatureExtractor(config).compute(audio), (raw - 0.5) / 2.0, atol=1e-5)


def test_batch_features_pads_with_zeros():
    a, b = np.ones((1, 1, 3, 5), np.float32), np.full((3, 2), 2, np.float32)
    features, lengths = ds2rt.batch_features([a, b])
    assert features.shape == (2, 1, 3, 5) and lengths.dtype == np.int32 and lengths.tolist() == [5, 2]
    assert (features[1, 0, :, :2] == 2).all() and (features[1, 0, :, 2:] == 0).all()


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ds2rt.Error, match="nothing_here.wav"):
        ds2rt.load_audio(tmp_path / "nothing_here.wav", 16000)
    corrupt = AUDIO.parent / "transcribe" / "corrupt.wav"
    with pytest.raises(ds2rt.Error, match="corrupt.wav"):
        ds2rt.load_audio(corrupt, 16000)
    with pytest.raises(ds2rt.Error, match="1-D"):
        ds2rt.Audio(np.zeros((2, 10), np.float32), 16000)
    with pytest.raises(ds2rt.Error):
        ds2rt.FeatureExtractor(ds2rt.FeatureConfig()).compute(ds2rt.Audio(np.zeros(1000, np.float32), 8000))
