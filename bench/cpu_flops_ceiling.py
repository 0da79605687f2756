#!/usr/bin/env python3
"""This CPU's fp32 (and int8) GEMM ceiling through oneDNN, the library ds2rt's CPU backend uses:
the best of several large dnnl_sgemm / dnnl_gemm_u8s8s32 calls. Threads: OMP_NUM_THREADS.

    OMP_NUM_THREADS=2 python3 bench/cpu_flops_ceiling.py
"""
import ctypes
import ctypes.util
import time

import numpy as np

lib = ctypes.CDLL(ctypes.util.find_library("dnnl") or "libdnnl.so")
P = ctypes.c_void_p
i64 = ctypes.c_int64
lib.dnnl_sgemm.argtypes = [ctypes.c_char, ctypes.c_char, i64, i64, i64, ctypes.c_float, P, i64, P, i64,
                           ctypes.c_float, P, i64]
lib.dnnl_gemm_u8s8s32.argtypes = [ctypes.c_char, ctypes.c_char, ctypes.c_char, i64, i64, i64, ctypes.c_float, P, i64,
                                  ctypes.c_uint8, P, i64, ctypes.c_int8, ctypes.c_float, P, i64, P]


def best(fn, runs=5):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


m = n = k = 2048
a = np.random.rand(m, k).astype(np.float32)
b = np.random.rand(n, k).astype(np.float32)
c = np.zeros((m, n), np.float32)
t = best(lambda: lib.dnnl_sgemm(b"N", b"T", m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, k, 0.0, c.ctypes.data, n))
print(f"fp32 sgemm {m}x{n}x{k}: {2 * m * n * k / t / 1e9:.1f} GFLOP/s (best of 5)")
au = np.random.randint(0, 255, (m, k), dtype=np.uint8)
bs = np.random.randint(-127, 127, (n, k), dtype=np.int8)
ci = np.zeros((m, n), np.int32)
zero = np.zeros(1, np.int32)
t = best(lambda: lib.dnnl_gemm_u8s8s32(b"N", b"T", b"F", m, n, k, 1.0, au.ctypes.data, k, 128, bs.ctypes.data, k, 0, 0.0,
                                       ci.ctypes.data, n, zero.ctypes.data))
print(f"int8 u8s8s32 gemm {m}x{n}x{k}: {2 * m * n * k / t / 1e9:.1f} GOP/s (best of 5)")
