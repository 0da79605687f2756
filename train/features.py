"""deepspeech.pytorch's spectrogram features in torch, batched, on any device, EXACTLY as ds2rt computes
them at inference (src/audio/features.cpp, window.cpp, feature_config.cpp):

  samples  int16 / 32767 (deepspeech.pytorch loads int16 WAVs as int16 / 32767; ds2rt reads them as
           int16 / 32768 and multiplies by 32768 / 32767)
  STFT     n_fft = win_length = 320 (20 ms at 16 kHz), hop 160 (10 ms), periodic Hamming window
           (scipy's hamming(321)[:320]), centred: n_fft/2 samples of reflect padding at each end
           (numpy 'reflect': the edge sample is not repeated), frames = 1 + len // hop
  value    log1p(|STFT|), 161 bins
  norm     per utterance: (x - mean) / std over all bins and frames, std unbiased; std 0 -> 1
Padded frames of a batch are 0 (what deepspeech.pytorch's collate gives).
"""
import math

import torch

SAMPLE_RATE = 16000
WINDOW_SIZE = 0.02
WINDOW_STRIDE = 0.01
N_FFT = int(SAMPLE_RATE * WINDOW_SIZE)
HOP = int(SAMPLE_RATE * WINDOW_STRIDE)
BINS = N_FFT // 2 + 1


def hamming(n, device):
    m = n + 1  # periodic = symmetric of n + 1 without its last point
    k = torch.arange(n, dtype=torch.float64)
    fac = -math.pi + 2.0 * math.pi * k / (m - 1)
    return (0.54 + 0.46 * torch.cos(fac)).to(torch.float32).to(device)


def num_frames(num_samples):
    return 1 + num_samples // HOP


def reflect_index(i, length):
    """numpy.pad(mode='reflect') source index of padded position i (any i), per row: i, length broadcast."""
    period = 2 * (length - 1).clamp(min=1)
    m = torch.remainder(i, period)
    return torch.where(m < length, m, period - m)


def warp_frequencies(spec, alpha, boundary=0.8):
    """Vocal tract length perturbation (Jaitly & Hinton, 2013) of magnitudes spec [B, T, bins]: utterance b's
    frequency f moves to alpha[b] * f up to a boundary, then linearly to the Nyquist frequency (which stays),
    so formants move as they would for a shorter (alpha > 1) or longer vocal tract. Linear interpolation."""
    bins = spec.shape[-1]
    nyq = float(bins - 1)
    a = alpha.to(spec.dtype)[:, None]  # B x 1
    f_out = torch.arange(bins, device=spec.device, dtype=spec.dtype)[None, :]  # output bin
    knee = boundary * nyq * torch.clamp(a, max=1.0) / a  # input frequency of the boundary
    src = torch.where(f_out <= a * knee, f_out / a, knee + (f_out - a * knee) * (nyq - knee) / (nyq - a * knee))
    src = src.clamp(0, nyq)
    lo = src.floor().long().clamp(max=bins - 2)
    frac = (src - lo)[:, None, :]
    idx = lo[:, None, :].expand(-1, spec.shape[1], -1)
    return torch.gather(spec, 2, idx) * (1 - frac) + torch.gather(spec, 2, idx + 1) * frac


def features(flat, starts, lengths, spec_window=None, warp=None):
    """flat: 1-D int16 (or float) tensor holding all utterances' samples; starts, lengths: int64 [B]
    (same device); warp: optional [B] VTLP factors (training augmentation, warp_frequencies).
    Returns (features [B, 1, 161, Tmax] float32, frames [B] int64)."""
    device = flat.device
    lengths = lengths.to(device)
    starts = starts.to(device)
    frames = num_frames(lengths)
    t_max = int(frames.max())
    pad = N_FFT // 2
    width = (t_max - 1) * HOP + N_FFT
    pos = torch.arange(width, device=device)[None, :] - pad  # position in the utterance, B x width
    src = reflect_index(pos, lengths[:, None])
    src = torch.minimum(src, (lengths - 1)[:, None])  # beyond the last frame: any valid sample (masked below)
    x = flat[starts[:, None] + src].to(torch.float32) / 32767.0
    win = spec_window if spec_window is not None else hamming(N_FFT, device)
    seg = x.unfold(1, N_FFT, HOP)  # B x t_max x n_fft
    spec = torch.fft.rfft(seg * win, dim=-1).abs()  # B x T x bins
    if warp is not None:
        spec = warp_frequencies(spec, warp)
    y = torch.log1p(spec).transpose(1, 2)  # B x bins x T
    valid = (torch.arange(t_max, device=device)[None, :] < frames[:, None])[:, None, :]  # B x 1 x T
    count = (frames * BINS).to(torch.float64)
    yv = torch.where(valid, y, torch.zeros((), device=device)).to(torch.float64)
    mean = yv.sum((1, 2)) / count
    var = (torch.where(valid, yv - mean[:, None, None], torch.zeros((), device=device, dtype=torch.float64)) ** 2
           ).sum((1, 2)) / (count - 1).clamp(min=1)
    std = var.sqrt()
    std = torch.where((std > 0) & torch.isfinite(std), std, torch.ones_like(std))
    out = (y - mean[:, None, None].float()) / std[:, None, None].float()
    out = torch.where(valid, out, torch.zeros((), device=device))
    return out[:, None], frames
