"""ds2rt's Python bindings for CTC decoding (against the pyctcdecode/kenlm/jiwer references the C++
suite checks too), WER/CER, and the one-call ds2rt.transcribe."""
import json
from pathlib import Path

import numpy as np
import pytest

ds2rt = pytest.importorskip("ds2rt", reason="the ds2rt package is not installed (pip install . from the repo root)")

DATA = Path(__file__).resolve().parents[1] / "data"
LABELS = list("_'ABCDEFGHIJKLMNOPQRSTUVWXYZ ")
MODEL = DATA / "parity" / "lstm_bi_l2_h32" / "model.safetensors"  # random weights, 16 kHz


def peaked(path, peak=0.9):
    """One frame per character of `path` ('_' is blank): that label gets `peak`, the rest share the rest."""
    probs = np.full((len(path), len(LABELS)), (1 - peak) / (len(LABELS) - 1), np.float32)
    for t, c in enumerate(path):
        probs[t, LABELS.index(c)] = peak
    return probs


def committed(relative):
    return json.loads((DATA / relative).read_text())


def test_greedy_one_utterance_and_a_batch():
    decoder = ds2rt.CtcDecoder(ds2rt.DecoderConfig(labels=LABELS))
    path = "__HHE_LL_LLO__  _WW_ORLD_ "
    h = decoder.greedy(peaked(path))
    assert h.text == "HELLO WORLD" and str(h) == "HELLO WORLD"
    assert len(h.chars) == 11 and h.chars[0].label == LABELS.index("H")
    assert [w.text for w in h.words] == ["HELLO", "WORLD"] and h.words[0].start_frame == 2
    assert h.words[0].start_seconds == pytest.approx(2 * 0.02) and 0 < h.confidence <= 1
    assert h.acoustic_score == pytest.approx(len(path) * np.log(0.9), abs=1e-4)

    a, b = peaked("_CAT_"), peaked("DOG")
    probs = np.zeros((2, 5, len(LABELS)), np.float32)
    probs[0], probs[1, :3] = a, b
    batch = decoder.greedy(probs, np.array([5, 3], np.int32))
    assert [h.text for h in batch] == ["CAT", "DOG"]
    log = ds2rt.CtcDecoder(ds2rt.DecoderConfig(labels=LABELS, input=ds2rt.PosteriorKind.LOG_PROBABILITIES))
    assert log.greedy(np.log(a)).text == "CAT"
    assert decoder.config.labels == LABELS and decoder.language_model is None


@pytest.mark.parametrize("file, lm", [("ctc/beam_nolm.json", None), ("ctc/beam_lm.json", "lm/tiny.arpa")])
def test_beam_search_matches_pyctcdecode(file, lm):
    data = committed(file)
    language_model = ds2rt.LanguageModel.load_arpa(DATA / lm) if lm else None
    for case in data["cases"]:
        beam = ds2rt.BeamSearchConfig(beam_width=case["beam_width"], nbest=case["beam_width"],
                                      beam_prune_logp=case["beam_prune_logp"], token_min_logp=case["token_min_logp"])
        if "alpha" in case:
            beam.alpha, beam.beta, beam.lm_score_boundary = case["alpha"], case["beta"], case["lm_score_boundary"]
        beam.hotwords = [ds2rt.Hotword(word, boost) for word, boost in case.get("hotwords", [])]
        decoder = ds2rt.CtcDecoder(ds2rt.DecoderConfig(labels=data["labels"], beam=beam), language_model)
        probs = np.array(data["posteriors"][case["posteriors"]], np.float32) / 10000
        best, expected = decoder.beam_search(probs)[0], case["expected"][0]
        assert best.text == expected["text"], case["name"]
        assert best.score == pytest.approx(expected["score"], abs=1e-4), case["name"]
        assert best.acoustic_score == pytest.approx(expected["logit_score"], abs=1e-4), case["name"]
        nbest = decoder.beam_search(probs[None], np.array([len(probs)]))[0]
        assert [h.text for h in nbest] == [h.text for h in decoder.beam_search(probs)]


def test_language_model_matches_kenlm():
    lm = ds2rt.LanguageModel.load_arpa(DATA / "lm" / "tiny.arpa")
    assert lm.order == 3 and lm.vocabulary_size > 20 and "CAT" in lm and "ZEBRA" not in lm
    assert lm.is_word_prefix("CA") and not lm.is_word_prefix("QQ")
    for row in committed("lm/kenlm_scores.json"):
        if row["lm"] == "tiny.arpa":
            assert lm.sentence_score(row["sentence"], row["bos"], row["eos"]) == pytest.approx(row["log10"], abs=1e-4)
    state = lm.begin_sentence()
    log10p, after = lm.score(state, "THE")
    assert log10p < 0 and after.words and after != state
    parsed = ds2rt.LanguageModel.parse_arpa((DATA / "lm" / "bigram.arpa").read_text())
    assert parsed.order == 2
    with pytest.raises(ds2rt.Error, match="ARPA"):
        ds2rt.LanguageModel.parse_arpa("not an arpa file")


def test_hotwords_and_config_errors():
    assert (ds2rt.parse_hotword("HELLO:2.5").word, ds2rt.parse_hotword("HELLO:2.5").boost) == ("HELLO", 2.5)
    assert ds2rt.parse_hotword("WORLD").boost == ds2rt.Hotword("x").boost
    with pytest.raises(ds2rt.Error, match="cutoff_prob"):
        ds2rt.CtcDecoder(ds2rt.DecoderConfig(labels=LABELS, beam=ds2rt.BeamSearchConfig(cutoff_prob=1.5)))
    decoder = ds2rt.CtcDecoder(ds2rt.DecoderConfig(labels=LABELS))
    with pytest.raises(ds2rt.Error):
        decoder.greedy(np.full((4, 5), 0.2, np.float32))  # 5 classes, 29 labels
    with pytest.raises(ds2rt.Error, match="frames x classes"):
        decoder.greedy(np.zeros((1, 4, 29), np.float32))


def test_error_rates_match_jiwer():
    data = committed("ctc/wer_jiwer.json")
    total = ds2rt.EditCounts()
    for pair in data["pairs"]:
        ref, hyp = pair["reference"], pair["hypothesis"]
        assert ds2rt.word_error_rate(ref, hyp) == pytest.approx(pair["wer"])
        assert ds2rt.char_error_rate(ref, hyp) == pytest.approx(pair["cer"])
        words = ds2rt.word_edits(ref, hyp)
        assert (words.errors, words.reference_length) == (pair["word_errors"], pair["word_reference_length"])
        assert ds2rt.char_edits(ref, hyp).errors == pair["char_errors"]
        if words.reference_length:
            total = total + words
    assert total.rate() == pytest.approx(data["corpus_wer_nonempty_references"])


def test_transcribe_is_the_pipeline_of_the_primitives():
    wav = DATA / "audio" / "hello_16k.wav"
    lm = DATA / "lm" / "tiny.arpa"
    result = ds2rt.transcribe(wav, model=MODEL, lm=lm, beam_width=16, hotwords=["CAT:3"])

    model = ds2rt.DeepSpeech2Model.load(MODEL)
    engine = ds2rt.Builder().build(model.create_network())
    features = ds2rt.FeatureExtractor(ds2rt.FeatureConfig.from_spectrogram_config(model.config.spect))
    x, lengths = ds2rt.batch_features([features.compute(ds2rt.load_audio(wav, 16000))])
    out = engine.create_context().run({"features": x, "lengths": lengths})
    beam = ds2rt.BeamSearchConfig(beam_width=16, hotwords=[ds2rt.Hotword("CAT", 3)])
    decoder = ds2rt.CtcDecoder(ds2rt.DecoderConfig(labels=model.config.labels, beam=beam),
                               ds2rt.LanguageModel.load_arpa(lm))
    expected = decoder.beam_search(out["probs"], out["output_lengths"])[0][0]
    assert (result.text, result.score) == (expected.text, pytest.approx(expected.score))

    transcriber = ds2rt.Transcriber(model, batch_size=2)  # greedy: no LM, hotwords or beam width
    audio = ds2rt.load_audio(wav, 16000)
    with pytest.warns(UserWarning, match="8000 Hz audio, upsampled to the model's 16000 Hz"):
        many = transcriber([wav, str(DATA / "audio" / "numbers_16k.flac"), audio, audio.samples,
                            ds2rt.load_audio(wav, 8000)])
    assert len(many) == 5 and many[0].text == many[2].text == many[3].text
    assert isinstance(transcriber(wav), ds2rt.Hypothesis)
    with pytest.warns(UserWarning, match="hello_8k.wav: 8000 Hz audio"):
        transcriber(DATA / "audio" / "hello_8k.wav")
    silence = ds2rt.Audio(np.zeros(16000, np.float32), 16000)
    assert ds2rt.audio_warnings(silence, 16000) == ["the audio is silent (peak 0): a transcript of it is noise, not speech"]
    with pytest.warns(UserWarning, match="audio: the audio is silent"):
        transcriber(silence)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none for speech at or above the model's rate
        transcriber([wav, DATA / "audio" / "numbers_48k.wav", audio])
    assert ds2rt.audio_warnings(audio, 16000) == []


def test_transcriber_cuts_long_audio_and_joins_the_pieces():
    wav = str(DATA / "audio" / "hello_16k.wav")
    hello = ds2rt.load_audio(wav, 16000).samples
    long = np.concatenate([hello, np.zeros(8000, np.float32)] * 30)  # ~45 s
    assert len(long) / 16000 > 40
    pieces = ds2rt.Transcriber(MODEL, max_segment=10)
    whole = ds2rt.Transcriber(MODEL, max_segment=0)
    cut = pieces(long)
    starts = [w.start_seconds for w in cut.words]
    assert starts == sorted(starts) and starts[-1] > 30  # times from the start of the audio
    assert len(cut.text.split()) == len(cut.words)
    # the pieces are what split_at_pauses gives, each decoded on its own, then joined
    audio = ds2rt.Audio(long, 16000)
    spans = ds2rt.split_at_pauses(audio, 10)
    alone = [whole(ds2rt.Audio(long[b:e], 16000)) for b, e in spans]
    joined = ds2rt.join_hypotheses(alone, [b / 16000 for b, _ in spans], whole.decoder.config)
    assert cut.text == joined.text
    assert [w.start_seconds for w in cut.words] == [w.start_seconds for w in joined.words]
    assert whole(wav).text == pieces(wav).text  # short input: one piece
    with pytest.raises(ds2rt.Error, match="max_segment"):
        ds2rt.Transcriber(MODEL, max_segment=0.5)


def test_split_at_pauses_cuts_in_the_silence():
    rate = 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate)).astype(np.float32)
    gap = np.zeros(rate // 2, np.float32)
    samples = np.concatenate([tone, gap] * 6)  # 21 s
    spans = ds2rt.split_at_pauses(ds2rt.Audio(samples, rate), 8.0)
    assert spans[0][0] == 0 and spans[-1][1] == len(samples)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(end - begin <= 8 * rate for begin, end in spans)
    for _, end in spans[:-1]:  # inside a gap: after a tone's 3 s
        assert (end % (rate * 7 // 2)) > 3 * rate
    with pytest.raises(ds2rt.Error, match="at least 1 s"):
        ds2rt.split_at_pauses(ds2rt.Audio(samples, rate), 0.5)


def test_transcribe_without_a_model_says_there_is_no_bundled_one(monkeypatch):
    monkeypatch.delenv("DS2RT_MODEL", raising=False)
    try:
        ds2rt.default_model_path()
    except ds2rt.Error:
        with pytest.raises(ds2rt.Error, match="no bundled model found"):
            ds2rt.transcribe(DATA / "audio" / "hello_16k.wav")
    with pytest.raises(ds2rt.Error, match="missing.wav"):
        ds2rt.transcribe(DATA / "audio" / "missing.wav", model=MODEL)


def test_a_transcriber_serves_many_threads():
    from concurrent.futures import ThreadPoolExecutor

    transcriber = ds2rt.Transcriber(MODEL, num_threads=1)
    wav = DATA / "audio" / "hello_16k.wav"
    expected = transcriber(wav).text
    with ThreadPoolExecutor(2) as pool:
        assert [h.text for h in pool.map(transcriber, [wav] * 4)] == [expected] * 4
