/*
 * CRC-32C for ffnet frames, folly/3FS variant: reflected Castagnoli polynomial 0x82F63B78, the register
 * starts at `previous` and there is no pre- or post-inversion ("123456789" -> 0x58E3FA20).
 *
 * The CRC instruction (SSE4.2 crc32 / ARMv8 crc32c*) has a latency of about three cycles but can start one
 * per cycle, so one dependent chain uses a third of it. Large inputs are cut into three equal blocks
 * checksummed in parallel; the three partial CRCs are then joined with
 *     crc(A || B) = shift(crc(A), |B|) ^ crc(0, B),    shift(c, n) = c * x^(8n) mod P,
 * which holds because, without inversions, the CRC is linear in the register and in the data. shift() is
 * linear in c, so for a fixed block length it is four 256-entry table lookups (one per byte of c).
 *
 * Built by scripts/build-native.mjs for x86_64 and aarch64 only; elsewhere, or on a CPU without the
 * instruction (then nothing is exported), @ffnet/serde falls back to @node-rs/crc32 or its JS table.
 */
#define NAPI_VERSION 5
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HW_TARGET __attribute__((target("sse4.2")))
#define CRC_U64(c, v) ((uint32_t)_mm_crc32_u64((c), (v)))
#define CRC_U8(c, b) _mm_crc32_u8((c), (b))
static int hw_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <arm_acle.h>
/* The build script compiles with -march=armv8-a+crc, which is what defines __ARM_FEATURE_CRC32. */
#define HW_TARGET
#define CRC_U64(c, v) __crc32cd((c), (v))
#define CRC_U8(c, b) __crc32cb((c), (b))
#if defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
static int hw_supported(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
/* Every arm64 macOS and Windows machine is ARMv8.1 or later, where the CRC32 instructions are mandatory. */
static int hw_supported(void) { return 1; }
#endif
#else
#error "crc32c.c needs x86_64, or little-endian aarch64 compiled with +crc"
#endif

#define POLY 0x82F63B78u
/* Three blocks of 8 KiB amortise the two shifts; 3 x 256 B keeps mid-sized inputs on the parallel path. */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

/* t[k][b] = shift(b << 8k, block length): the shift of a register whose byte k is b. */
typedef struct {
  uint32_t t[4][256];
} shift_table;

/* Which wide path crc32c_hw and crc32c_copy_hw take for long inputs (x86_64 only; see "Folding" below). */
enum { FOLD_NONE = 0, FOLD_YMM = 1, FOLD_ZMM = 2 };

typedef struct {
  shift_table long_shift, short_shift;
  /* x^(8 FOLD_BYTES + 31) and x^(8 FOLD_BYTES - 33) mod P: what moves a 128-bit lane FOLD_BYTES ahead ("Folding"). */
  uint64_t fold_k[2];
  int fold;
} crc_tables;

/*
 * a * b mod P with polynomials in the reflected layout: bit 31 holds the x^0 coefficient, bit 0 x^31.
 * Multiplying by x is a right shift, reduced by P when x^31 falls off the end.
 */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; i++) {
    if (a & (0x80000000u >> i)) product ^= b;
    b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
  }
  return product;
}

/* x^e mod P by square-and-multiply over the bits of e. */
static uint32_t x_pow(size_t e) {
  uint32_t square = 0x40000000u; /* x^1 */
  uint32_t result = 0x80000000u; /* x^0 = 1 */
  for (; e != 0; e >>= 1) {
    if (e & 1) result = gf2_mulmod(result, square);
    square = gf2_mulmod(square, square);
  }
  return result;
}

static void make_shift_table(shift_table *s, size_t block) {
  uint32_t xn = x_pow(block * 8);
  for (int k = 0; k < 4; k++) {
    for (uint32_t b = 0; b < 256; b++) s->t[k][b] = gf2_mulmod(xn, b << (8 * k));
  }
}

static inline uint32_t shift(const shift_table *s, uint32_t c) {
  return s->t[0][c & 0xff] ^ s->t[1][(c >> 8) & 0xff] ^ s->t[2][(c >> 16) & 0xff] ^ s->t[3][c >> 24];
}

static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Consumes whole groups of three `block`-byte blocks from *pp, three CRC chains at a time. */
HW_TARGET static inline __attribute__((always_inline)) uint32_t crc_3way(uint32_t crc, const uint8_t **pp, size_t *np,
                                                                         size_t block, const shift_table *s) {
  const uint8_t *p = *pp;
  size_t n = *np;
  while (n >= 3 * block) {
    uint32_t c0 = crc, c1 = 0, c2 = 0;
    const uint8_t *end = p + block;
    do {
      c0 = CRC_U64(c0, load64(p));
      c1 = CRC_U64(c1, load64(p + block));
      c2 = CRC_U64(c2, load64(p + 2 * block));
      p += 8;
    } while (p < end);
    crc = shift(s, shift(s, c0) ^ c1) ^ c2;
    p += 2 * block;
    n -= 3 * block;
  }
  *pp = p;
  *np = n;
  return crc;
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
/*
 * Folding, for long inputs on x86_64 CPUs with VPCLMULQDQ: carry-less multiplies move 128-bit lanes of the message
 * ahead instead of feeding every word through one CRC instruction. A 128-bit lane, loaded little-endian, is the
 * polynomial whose bit j is the coefficient of x^(127-j) (reflected, as the register is). Moving it D bits further
 * down the message multiplies it by x^D; split into its 64-bit halves, that is two 64x32-bit carry-less products
 * with x^(D+31) and x^(D-33) mod P (the 33 is what the product's bit positions are off by), whose sum still fits in
 * 128 bits and is congruent mod P, which is all the CRC sees. 256 bytes of lanes are moved 256 bytes ahead and XORed
 * into the next 256 until fewer are left; the CRC of the message so far is then the CRC, from a zero register, of
 * those 256 bytes of lanes, which the CRC instruction finishes. Measured with bench/crc-bench.mjs on 1 MiB: the 512-bit
 * form (four lanes per instruction) ~3.5x the three CRC streams, the 256-bit form ~2x.
 */
#define FOLD_BYTES 256
/* Below this the three CRC streams are as fast: folding ends on 256 bytes through the CRC instruction (~40 ns). */
#define FOLD_MIN 1024
#define ZMM_TARGET __attribute__((target("sse4.2,pclmul,avx,avx2,avx512f,avx512vl,vpclmulqdq")))
#define YMM_TARGET __attribute__((target("sse4.2,pclmul,avx,avx2,vpclmulqdq")))

/* The widest fold this CPU and OS run: VPCLMULQDQ, and the OS saving the vector registers it needs (XCR0). */
static int fold_supported(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_PCLMUL)) return FOLD_NONE;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  (void)hi;
  if (__get_cpuid_max(0, NULL) < 7) return FOLD_NONE;
  __cpuid_count(7, 0, a, b, c, d);
  int vpclmul = (c & (1u << 10)) != 0;
  int avx2 = (b & (1u << 5)) != 0, avx512f = (b & (1u << 16)) != 0, avx512vl = (b & (1u << 31)) != 0;
  int ymm_state = (lo & 0x6) == 0x6, zmm_state = (lo & 0xe6) == 0xe6;
  if (vpclmul && avx512f && avx512vl && zmm_state) return FOLD_ZMM;
  if (vpclmul && avx2 && ymm_state) return FOLD_YMM;
  return FOLD_NONE;
}

/* The 256 bytes of lanes left by a fold, through the CRC instruction from a zero register. */
HW_TARGET static uint32_t fold_finish(const uint8_t *lanes) {
  uint32_t crc = 0;
  for (int i = 0; i < FOLD_BYTES; i += 8) crc = CRC_U64(crc, load64(lanes + i));
  return crc;
}

/* Each vector width's loads, stores, the constants in every 128-bit lane, the register joined and one fold step. */
ZMM_TARGET static inline __m512i zmm_loadu(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }
ZMM_TARGET static inline void zmm_storeu(uint8_t *d, __m512i v) { _mm512_storeu_si512((void *)d, v); }
ZMM_TARGET static inline __m512i zmm_lanes(__m128i k) { return _mm512_broadcast_i32x4(k); }
ZMM_TARGET static inline __m512i zmm_with_crc(__m512i v, uint32_t crc) {
  return _mm512_xor_si512(v, _mm512_setr_epi32((int)crc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
}
/* a moved ahead, XORed into b (0x96: three-way XOR). */
ZMM_TARGET static inline __m512i zmm_fold(__m512i a, __m512i k, __m512i b) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00), _mm512_clmulepi64_epi128(a, k, 0x11), b, 0x96);
}
YMM_TARGET static inline __m256i ymm_loadu(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
YMM_TARGET static inline void ymm_storeu(uint8_t *d, __m256i v) { _mm256_storeu_si256((__m256i *)d, v); }
YMM_TARGET static inline __m256i ymm_lanes(__m128i k) { return _mm256_broadcastsi128_si256(k); }
YMM_TARGET static inline __m256i ymm_with_crc(__m256i v, uint32_t crc) { return _mm256_xor_si256(v, _mm256_setr_epi32((int)crc, 0, 0, 0, 0, 0, 0, 0)); }
YMM_TARGET static inline __m256i ymm_fold(__m256i a, __m256i k, __m256i b) {
  return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(a, k, 0x00), _mm256_clmulepi64_epi128(a, k, 0x11)), b);
}

/*
 * The fold, once for each width W (bytes per vector, FOLD_BYTES / W vectors of lanes): whole 256-byte blocks of *pp
 * (n >= 512), each also stored at *dp when `copy`. The constant-bound loops are unrolled by the compiler, so the
 * vectors stay in registers.
 */
#define DEFINE_FOLD(w, TARGET, vec, W)                                                                                  \
  TARGET static inline __attribute__((always_inline)) uint32_t w##_fold_body(uint32_t crc, const uint8_t **pp, uint8_t **dp, \
                                                                             size_t *np, const uint64_t k[2], int copy) { \
    const uint8_t *p = *pp;                                                                                             \
    uint8_t *d = copy ? *dp : NULL;                                                                                     \
    size_t n = *np;                                                                                                     \
    const vec K = w##_lanes(_mm_set_epi64x((long long)k[1], (long long)k[0]));                                          \
    vec a[FOLD_BYTES / W];                                                                                              \
    _Pragma("GCC unroll 8") for (int i = 0; i < FOLD_BYTES / W; i++) {                                                  \
      a[i] = w##_loadu(p + W * i);                                                                                      \
      if (copy) w##_storeu(d + W * i, a[i]);                                                                            \
    }                                                                                                                   \
    if (copy) d += FOLD_BYTES;                                                                                          \
    /* The register joins the message as its first 32 bits (no inversions: crc(c, M) = crc(0, M ^ c)). */              \
    a[0] = w##_with_crc(a[0], crc);                                                                                     \
    p += FOLD_BYTES;                                                                                                    \
    n -= FOLD_BYTES;                                                                                                    \
    while (n >= FOLD_BYTES) {                                                                                           \
      _Pragma("GCC unroll 8") for (int i = 0; i < FOLD_BYTES / W; i++) {                                                \
        vec b = w##_loadu(p + W * i);                                                                                   \
        if (copy) w##_storeu(d + W * i, b);                                                                             \
        a[i] = w##_fold(a[i], K, b);                                                                                    \
      }                                                                                                                 \
      if (copy) d += FOLD_BYTES;                                                                                        \
      p += FOLD_BYTES;                                                                                                  \
      n -= FOLD_BYTES;                                                                                                  \
    }                                                                                                                   \
    uint8_t lanes[FOLD_BYTES] __attribute__((aligned(64)));                                                             \
    _Pragma("GCC unroll 8") for (int i = 0; i < FOLD_BYTES / W; i++) w##_storeu(lanes + W * i, a[i]);                  \
    *pp = p;                                                                                                            \
    if (copy) *dp = d;                                                                                                  \
    *np = n;                                                                                                            \
    return fold_finish(lanes);                                                                                          \
  }                                                                                                                     \
  /* The body instantiated without and with the copy, each compiled for this width's instructions. */                  \
  TARGET static uint32_t w##_fold_long(uint32_t crc, const uint8_t **pp, size_t *np, const uint64_t k[2]) {             \
    return w##_fold_body(crc, pp, NULL, np, k, 0);                                                                      \
  }                                                                                                                     \
  TARGET static uint32_t w##_fold_long_copy(uint32_t crc, const uint8_t **pp, uint8_t **dp, size_t *np, const uint64_t k[2]) { \
    return w##_fold_body(crc, pp, dp, np, k, 1);                                                                        \
  }

/* 512-bit vectors: four lanes per instruction, four vectors. */
DEFINE_FOLD(zmm, ZMM_TARGET, __m512i, 64)
/* 256-bit vectors (two lanes each, eight of them), for CPUs with VPCLMULQDQ but no AVX-512. */
DEFINE_FOLD(ymm, YMM_TARGET, __m256i, 32)

/* Long inputs through the fold this CPU has; the rest (under 256 bytes) is left for the CRC instruction. */
static inline uint32_t fold_long(const crc_tables *tb, uint32_t crc, const uint8_t **pp, size_t *np) {
  if (tb->fold == FOLD_NONE || *np < FOLD_MIN) return crc;
  return tb->fold == FOLD_ZMM ? zmm_fold_long(crc, pp, np, tb->fold_k) : ymm_fold_long(crc, pp, np, tb->fold_k);
}
static inline uint32_t fold_long_copy(const crc_tables *tb, uint32_t crc, const uint8_t **pp, uint8_t **dp, size_t *np) {
  if (tb->fold == FOLD_NONE || *np < FOLD_MIN) return crc;
  return tb->fold == FOLD_ZMM ? zmm_fold_long_copy(crc, pp, dp, np, tb->fold_k) : ymm_fold_long_copy(crc, pp, dp, np, tb->fold_k);
}
#else
#define FOLD_BYTES 256
static int fold_supported(void) { return FOLD_NONE; }
static inline uint32_t fold_long(const crc_tables *tb, uint32_t crc, const uint8_t **pp, size_t *np) {
  (void)tb, (void)pp, (void)np;
  return crc;
}
static inline uint32_t fold_long_copy(const crc_tables *tb, uint32_t crc, const uint8_t **pp, uint8_t **dp, size_t *np) {
  (void)tb, (void)pp, (void)dp, (void)np;
  return crc;
}
#endif

HW_TARGET static uint32_t crc32c_hw(const crc_tables *tb, uint32_t crc, const uint8_t *p, size_t n) {
  /* Aligned 8-byte loads never straddle a cache line. */
  while (n != 0 && ((uintptr_t)p & 7) != 0) {
    crc = CRC_U8(crc, *p++);
    n--;
  }
  crc = fold_long(tb, crc, &p, &n);
  crc = crc_3way(crc, &p, &n, LONG_BLOCK, &tb->long_shift);
  crc = crc_3way(crc, &p, &n, SHORT_BLOCK, &tb->short_shift);
  for (; n >= 8; n -= 8, p += 8) crc = CRC_U64(crc, load64(p));
  for (; n != 0; n--) crc = CRC_U8(crc, *p++);
  return crc;
}

static inline void store64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/*
 * crc_3way that also stores every word it checksums at the same offset of `*dp`. Copying and checksumming in one
 * pass reads the source once: the CRC is then of exactly the bytes written, even if another process rewrites
 * the source meanwhile (shared memory), and the copy is not read again to checksum it.
 */
HW_TARGET static inline __attribute__((always_inline)) uint32_t copy_3way(uint32_t crc, const uint8_t **pp, uint8_t **dp,
                                                                          size_t *np, size_t block, const shift_table *s) {
  const uint8_t *p = *pp;
  uint8_t *d = *dp;
  size_t n = *np;
  while (n >= 3 * block) {
    uint32_t c0 = crc, c1 = 0, c2 = 0;
    const uint8_t *end = p + block;
    do {
      uint64_t a = load64(p), b = load64(p + block), c = load64(p + 2 * block);
      c0 = CRC_U64(c0, a);
      c1 = CRC_U64(c1, b);
      c2 = CRC_U64(c2, c);
      store64(d, a);
      store64(d + block, b);
      store64(d + 2 * block, c);
      p += 8;
      d += 8;
    } while (p < end);
    crc = shift(s, shift(s, c0) ^ c1) ^ c2;
    p += 2 * block;
    d += 2 * block;
    n -= 3 * block;
  }
  *pp = p;
  *dp = d;
  *np = n;
  return crc;
}

HW_TARGET static uint32_t crc32c_copy_hw(const crc_tables *tb, uint32_t crc, uint8_t *d, const uint8_t *p, size_t n) {
  /* Every source byte is loaded once, as a byte or inside one word, and that value is both stored and checksummed. */
  while (n != 0 && ((uintptr_t)p & 7) != 0) {
    uint8_t v = *p++;
    crc = CRC_U8(crc, v);
    *d++ = v;
    n--;
  }
  crc = fold_long_copy(tb, crc, &p, &d, &n);
  crc = copy_3way(crc, &p, &d, &n, LONG_BLOCK, &tb->long_shift);
  crc = copy_3way(crc, &p, &d, &n, SHORT_BLOCK, &tb->short_shift);
  for (; n >= 8; n -= 8, p += 8, d += 8) {
    uint64_t v = load64(p);
    crc = CRC_U64(crc, v);
    store64(d, v);
  }
  for (; n != 0; n--) {
    uint8_t v = *p++;
    crc = CRC_U8(crc, v);
    *d++ = v;
  }
  return crc;
}

static int get_u8array(napi_env env, napi_value v, size_t *length, void **base) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, v, &type, length, base, NULL, NULL) == napi_ok && type == napi_uint8_array;
}

/*
 * crc32cCopy(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number, previous: number): number.
 * Copies src[start..end) to dst[at..] and returns the CRC of the bytes copied, continued from `previous`. The
 * two ranges must not overlap.
 */
static napi_value js_crc32c_copy(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  void *tables;
  size_t src_len, dst_len;
  void *src, *dst;
  int64_t start, end, at;
  uint32_t previous;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, &tables) != napi_ok) return NULL;
  if (argc < 6 || !get_u8array(env, argv[0], &src_len, &src) || !get_u8array(env, argv[3], &dst_len, &dst)) {
    napi_throw_type_error(env, NULL, "crc32cCopy: src and dst must be Uint8Arrays");
    return NULL;
  }
  if (napi_get_value_int64(env, argv[1], &start) != napi_ok || napi_get_value_int64(env, argv[2], &end) != napi_ok ||
      napi_get_value_int64(env, argv[4], &at) != napi_ok || napi_get_value_uint32(env, argv[5], &previous) != napi_ok) {
    napi_throw_type_error(env, NULL, "crc32cCopy: start, end, at and previous must be numbers");
    return NULL;
  }
  if (start < 0 || start > end || (uint64_t)end > src_len || at < 0 || (uint64_t)at > dst_len ||
      (uint64_t)(end - start) > dst_len - (uint64_t)at) {
    napi_throw_range_error(env, NULL, "crc32cCopy: a range is outside its array");
    return NULL;
  }
  size_t n = (size_t)(end - start);
  uint32_t crc = previous;
  if (n != 0) {
    const uint8_t *s = (const uint8_t *)src + start;
    uint8_t *d = (uint8_t *)dst + at;
    if (s < d + n && d < s + n) {
      napi_throw_range_error(env, NULL, "crc32cCopy: src and dst overlap");
      return NULL;
    }
    crc = crc32c_copy_hw(tables, previous, d, s, n);
  }
  if (napi_create_uint32(env, crc, &result) != napi_ok) return NULL;
  return result;
}

/* crc32c(data: Uint8Array, start: number, end: number, previous: number): number over data[start..end). */
static napi_value js_crc32c(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *tables;
  napi_typedarray_type type;
  size_t length;
  void *base;
  int64_t start, end;
  uint32_t previous;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, &tables) != napi_ok) return NULL;
  if (argc < 4 || napi_get_typedarray_info(env, argv[0], &type, &length, &base, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "crc32c: data must be a Uint8Array");
    return NULL;
  }
  if (napi_get_value_int64(env, argv[1], &start) != napi_ok || napi_get_value_int64(env, argv[2], &end) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &previous) != napi_ok) {
    napi_throw_type_error(env, NULL, "crc32c: start, end and previous must be numbers");
    return NULL;
  }
  if (start < 0 || start > end || (uint64_t)end > length) {
    napi_throw_range_error(env, NULL, "crc32c: start..end is outside the array");
    return NULL;
  }
  /* A detached or empty array has a NULL base; never do arithmetic on it. */
  uint32_t crc = end == start ? previous : crc32c_hw(tables, previous, (const uint8_t *)base + start, (size_t)(end - start));
  if (napi_create_uint32(env, crc, &result) != napi_ok) return NULL;
  return result;
}

/*
 * crc32cRanges(data: Uint8Array, ranges: Int32Array, count: number, out: Int32Array): undefined.
 * out[i] = CRC of data[ranges[2i]..ranges[2i+1]) from a zero register, for i < count: the frames of one read, or
 * of one write batch, checksummed in one call instead of one call each (the call costs more than a small frame).
 */
static napi_value js_crc32c_ranges(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *tables;
  napi_typedarray_type type;
  size_t length, ranges_len, out_len;
  void *base, *ranges_base, *out_base;
  uint32_t count;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, &tables) != napi_ok) return NULL;
  if (argc < 4 || !get_u8array(env, argv[0], &length, &base)) {
    napi_throw_type_error(env, NULL, "crc32cRanges: data must be a Uint8Array");
    return NULL;
  }
  if (napi_get_typedarray_info(env, argv[1], &type, &ranges_len, &ranges_base, NULL, NULL) != napi_ok || type != napi_int32_array ||
      napi_get_typedarray_info(env, argv[3], &type, &out_len, &out_base, NULL, NULL) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, NULL, "crc32cRanges: ranges and out must be Int32Arrays");
    return NULL;
  }
  if (napi_get_value_uint32(env, argv[2], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "crc32cRanges: count must be a number");
    return NULL;
  }
  if ((uint64_t)count * 2 > ranges_len || count > out_len) {
    napi_throw_range_error(env, NULL, "crc32cRanges: count is more than ranges or out hold");
    return NULL;
  }
  const int32_t *r = (const int32_t *)ranges_base;
  int32_t *out = (int32_t *)out_base;
  /* Checked in full before anything is written, so a bad range leaves out as it was. */
  for (uint32_t i = 0; i < count; i++) {
    int32_t start = r[2 * i], end = r[2 * i + 1];
    if (start < 0 || start > end || (uint64_t)end > length) {
      napi_throw_range_error(env, NULL, "crc32cRanges: a range is outside data");
      return NULL;
    }
  }
  for (uint32_t i = 0; i < count; i++) {
    int32_t start = r[2 * i], end = r[2 * i + 1];
    out[i] = (int32_t)(end == start ? 0 : crc32c_hw(tables, 0, (const uint8_t *)base + start, (size_t)(end - start)));
  }
  return NULL;
}

/*
 * The fold this process uses: the widest the CPU has, unless FFNET_CRC32C_FOLD narrows it ("ymm": 256-bit vectors at
 * most, "off": the three CRC streams only), which is how the tests run every path on one machine.
 */
static int fold_choice(void) {
  int best = fold_supported();
  const char *want = getenv("FFNET_CRC32C_FOLD");
  if (want == NULL) return best;
  if (strcmp(want, "off") == 0) return FOLD_NONE;
  if (strcmp(want, "ymm") == 0 && best > FOLD_YMM) return FOLD_YMM;
  return best;
}

static const char *instructions_name(int fold) {
#if defined(__x86_64__)
  return fold == FOLD_ZMM ? "sse4.2+vpclmulqdq-512" : fold == FOLD_YMM ? "sse4.2+vpclmulqdq-256" : "sse4.2";
#else
  (void)fold;
  return "armv8-crc32";
#endif
}

static void free_tables(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/*
 * Exports `cb` as `name` with its own copy of the tables, freed with the function: the functions may be collected in
 * any order, so none shares memory with another. False when something failed; nothing is left allocated then.
 */
static int export_with_tables(napi_env env, napi_value exports, const char *name, napi_callback cb, const crc_tables *src) {
  crc_tables *tables = malloc(sizeof *tables);
  if (tables == NULL) return 0;
  memcpy(tables, src, sizeof *tables);
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, tables, &fn) != napi_ok ||
      napi_add_finalizer(env, fn, tables, free_tables, NULL, NULL) != napi_ok) {
    free(tables);
    return 0;
  }
  return napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!hw_supported()) return exports;
  /* Per environment (each worker thread loads its own), so nothing is shared and nothing races. */
  crc_tables *tables = malloc(sizeof *tables);
  if (tables == NULL) return exports;
  make_shift_table(&tables->long_shift, LONG_BLOCK);
  make_shift_table(&tables->short_shift, SHORT_BLOCK);
  tables->fold_k[0] = x_pow(FOLD_BYTES * 8 + 31);
  tables->fold_k[1] = x_pow(FOLD_BYTES * 8 - 33);
  tables->fold = fold_choice();
  /* In order, stopping at the first failure: crc32c alone is a working addon, the others are optional. */
  if (export_with_tables(env, exports, "crc32c", js_crc32c, tables) && export_with_tables(env, exports, "crc32cCopy", js_crc32c_copy, tables))
    export_with_tables(env, exports, "crc32cRanges", js_crc32c_ranges, tables);
  napi_value name;
  if (napi_create_string_utf8(env, instructions_name(tables->fold), NAPI_AUTO_LENGTH, &name) == napi_ok)
    napi_set_named_property(env, exports, "instructions", name);
  free(tables);
  return exports;
}
