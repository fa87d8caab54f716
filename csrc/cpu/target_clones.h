// The CPU loops are compiled for AVX-512, AVX2 and baseline x86-64 and the loader picks
// the widest the CPU has, so one binary is both portable and vectorized.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GRU_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GRU_CPU_CLONES
#endif
