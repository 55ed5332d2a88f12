// The one Highway configuration of every kernel file: include it before
// <hwy/foreach_target.h>. Every attainable target is compiled and chosen at
// run time (AVX3, AVX2, SSE4 and the portable fallback on x86), except two
// that add nothing to these kernels: SSSE3 (SSE4 covers every x86 CPU in
// use) and AVX3_DL (no VNNI / VBMI use). cpu::compiled_targets() reports the
// resulting set, so the forced-target tests enumerate it instead of a list.
// No include guard on purpose: foreach_target re-includes the kernel file
// once per target, and these definitions must hold for every pass.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_AVX3_DL)
#endif
#ifndef HWY_COMPILE_ALL_ATTAINABLE
#define HWY_COMPILE_ALL_ATTAINABLE
#endif
// A kernel file that included a Highway header first would silently compile
// Highway's default set instead: refuse to build.
#ifndef QUANTKIT_HIGHWAY_CONFIGURED
#define QUANTKIT_HIGHWAY_CONFIGURED
#ifdef HWY_TARGETS
#error "include cpu/highway_config.h before any Highway header"
#endif
#endif
