/* ctrconvert: the native fast path of `python -m data_tools convert`.
 *
 * It does the Python converter's two passes (data_tools/convert.py) in C
 * threads and writes byte-identical output (tests/data_tools/test_native.py
 * compares every file):
 *
 *   1. count the categorical tokens of the training rows (per-thread hash
 *      tables, merged), build each vocabulary (count >= min_count, by
 *      decreasing count then token bytes) and write DIR/vocab/<field>.txt;
 *   2. parse every row again, map tokens to ids (padding 0, OOV 1, vocab
 *      line i -> i + 2), serialize tf.train.Example wire bytes with the
 *      constant pieces the Python ExampleEncoder hands over, frame them as
 *      TFRecords (masked CRC-32C) and append each chunk's records to its
 *      shard file in chunk order.
 *
 * The Python side (data_tools/native.py) plans the chunks and shards and
 * writes the job file; this program never decides anything the Python
 * converter decides differently. Rows the Python converter would reject or
 * treat specially (wrong column count, blank lines, labels or numbers
 * outside a strict grammar, quotes in CSV) are not handled here: the
 * program stops with exit status 3 and says why, and the caller reruns the
 * conversion in Python. Exit status 1 is an I/O error, 2 a bad job file.
 *
 * Usage: ctrconvert JOB_FILE       (the job file format is in native.py)
 * Output on stdout: "progress <pass> <rows>" lines (unless quiet), then
 * "read <split> <rows>", "positives <split> <rows with label 1>",
 * "vocab <field> <size>", "crc32c <file> <hex>", "done".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef MAP_NORESERVE /* not on every BSD */
#define MAP_NORESERVE 0
#endif

#define MAX_FIELDS 1024
#define MAX_SPLITS 3
#define MAX_FILES 3

enum { T_NONE, T_LOG_SQUARE_BUCKET, T_LOG1P, T_PLAIN_NUMBER, T_HOUR_OF_DAY,
       T_WEEKDAY, T_LIBFM_TOKEN };
enum { EXIT_IO = 1, EXIT_JOB = 2, EXIT_UNSUPPORTED = 3 };

/* ------------------------------------------------------------ errors */
static void die(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ctrconvert: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(status);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die(EXIT_IO, "out of memory (%zu bytes)", n);
  return p;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) die(EXIT_IO, "out of memory (%zu bytes)", n * size);
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) die(EXIT_IO, "out of memory (%zu bytes)", n);
  return p;
}

/* First unsupported row wins; workers poll `g_stop` and return early. */
static atomic_int g_stop;
static pthread_mutex_t g_msg_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_msg[512];

static void unsupported(const char *path, long long offset, const char *why) {
  pthread_mutex_lock(&g_msg_lock);
  if (!atomic_load(&g_stop)) {
    snprintf(g_msg, sizeof g_msg, "%s: row at byte %lld: %s", path, offset,
             why);
    atomic_store(&g_stop, 1);
  }
  pthread_mutex_unlock(&g_msg_lock);
}

/* ------------------------------------------------------------ CRC-32C */
static uint32_t crc_table[8][256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (c & 1 ? 0x82F63B78u : 0);
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
                        crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc_update_sw(uint32_t crc, const unsigned char *p,
                              size_t n) {
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= crc;
    crc = crc_table[7][w & 0xFF] ^ crc_table[6][(w >> 8) & 0xFF] ^
          crc_table[5][(w >> 16) & 0xFF] ^ crc_table[4][(w >> 24) & 0xFF] ^
          crc_table[3][(w >> 32) & 0xFF] ^ crc_table[2][(w >> 40) & 0xFF] ^
          crc_table[1][(w >> 48) & 0xFF] ^ crc_table[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#if defined(__x86_64__)
/* Long buffers run three independent crc32 chains (the instruction has a
 * latency of 3 and a throughput of 1 per cycle) over consecutive blocks of
 * CRC_BLOCK bytes, joined as reg(r, A B) = shift(reg(r, A)) ^ reg(0, B),
 * where shift (feeding CRC_BLOCK zero bytes) is linear: crc_shift_table. */
#define CRC_BLOCK 8192
static uint32_t crc_shift_table[4][256];

static inline uint32_t crc_shift_block(uint32_t c) {
  return crc_shift_table[0][c & 0xFF] ^ crc_shift_table[1][(c >> 8) & 0xFF] ^
         crc_shift_table[2][(c >> 16) & 0xFF] ^ crc_shift_table[3][c >> 24];
}

__attribute__((target("sse4.2"))) static void crc_shift_init(void) {
  uint32_t basis[32];
  for (int i = 0; i < 32; i++) {
    uint64_t c = 1u << i;
    for (int k = 0; k < CRC_BLOCK / 8; k++) c = _mm_crc32_u64(c, 0);
    basis[i] = (uint32_t)c;
  }
  for (int t = 0; t < 4; t++)
    for (int b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int j = 0; j < 8; j++)
        if (b >> j & 1) v ^= basis[8 * t + j];
      crc_shift_table[t][b] = v;
    }
}

__attribute__((target("sse4.2"))) static uint32_t crc_update_hw(
    uint32_t crc, const unsigned char *p, size_t n) {
  while (n >= 3 * CRC_BLOCK) {
    uint64_t c0 = crc, c1 = 0, c2 = 0;
    for (size_t i = 0; i < CRC_BLOCK; i += 8) {
      uint64_t w0, w1, w2;
      memcpy(&w0, p + i, 8);
      memcpy(&w1, p + CRC_BLOCK + i, 8);
      memcpy(&w2, p + 2 * CRC_BLOCK + i, 8);
      c0 = _mm_crc32_u64(c0, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
    }
    crc = crc_shift_block(crc_shift_block((uint32_t)c0) ^ (uint32_t)c1) ^
          (uint32_t)c2;
    p += 3 * CRC_BLOCK;
    n -= 3 * CRC_BLOCK;
  }
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  crc = (uint32_t)c;
  while (n--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}
#endif

static uint32_t (*crc_update)(uint32_t, const unsigned char *, size_t) =
    crc_update_sw;

static void crc_select(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) {
    crc_shift_init();
    crc_update = crc_update_hw;
  }
#endif
}

/* Unmasked CRC-32C (init and final xor 0xFFFFFFFF), as crc32c() in
 * data_tools/tfrecord.py. */
static uint32_t crc32c(const void *p, size_t n) {
  return crc_update(0xFFFFFFFFu, p, n) ^ 0xFFFFFFFFu;
}

static uint32_t mask_crc(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

/* crc(A || B) from crc(A), crc(B) and len(B), as zlib 1.2.12's
 * crc32_combine with the Castagnoli polynomial P: a CRC register is a
 * polynomial over GF(2) (reflected: bit 31 is x^0); appending n zero bytes
 * multiplies it by x^(8n) mod P, made of the powers x^(2^k) mod P in
 * x2n_table (k < 64: any uint64 length). */
static uint32_t x2n_table[64];

static uint32_t multmodp(uint32_t a, uint32_t b) { /* a * b mod P */
  uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = b & 1 ? (b >> 1) ^ 0x82F63B78u : b >> 1;
  }
  return p;
}

static void x2n_init(void) {
  uint32_t p = 1u << 30; /* x^1 */
  x2n_table[0] = p;
  for (int n = 1; n < 64; n++) x2n_table[n] = p = multmodp(p, p);
}

static uint32_t crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2) {
  uint32_t p = 1u << 31; /* x^0; then x^(8 len2) mod P */
  for (unsigned k = 3; len2; len2 >>= 1, k++) /* 8 len2 = len2 << 3 */
    if (len2 & 1) p = multmodp(x2n_table[k], p);
  return multmodp(p, crc1) ^ crc2;
}

/* ------------------------------------------------------------ hashing */
static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static inline uint64_t hash_bytes(const char *p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull * (n + 1);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, p, n);
  return mix64(h ^ w);
}

/* A key of up to 8 bytes is kept in its slot as one word (the bytes, with
 * the length in the top byte when shorter than 8), so that a lookup reads
 * one slot and compares no bytes. Longer keys, and 8-byte keys whose last
 * byte could be mistaken for a length, keep their 64-bit hash and the
 * `long` flag, and are compared in full. Every key pointer handed to a
 * table has 8 readable bytes from its start: read buffers, token buffers
 * and stored keys are padded for it. */
static inline uint64_t key_word(const char *p, uint32_t n, uint32_t *long_key) {
  uint64_t w;
  memcpy(&w, p, 8);
  if (n < 8) {
    *long_key = 0;
    return (w & ((1ull << (8 * n)) - 1)) | (uint64_t)n << 56;
  }
  if (n == 8 && (w >> 56) >= 8) {
    *long_key = 0;
    return w;
  }
  *long_key = 1u << 31;
  return hash_bytes(p, n);
}

/* key_word of a key of n <= 8 bytes: (word & KEY_MASK[n]) | KEY_TAG[n]. */
static const uint64_t KEY_MASK[9] = {
    0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFFull, 0xFFFFFFFFFFull,
    0xFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFull, ~0ull};
static const uint64_t KEY_TAG[9] = {
    0, 1ull << 56, 2ull << 56, 3ull << 56, 4ull << 56, 5ull << 56,
    6ull << 56, 7ull << 56, 0};

/* Fibonacci hashing: the slot is the top bits of the product. */
static inline uint64_t slot_hash(uint64_t k) {
  return (k ^ (k >> 29)) * 0x9E3779B97F4A7C15ull;
}

typedef struct Block {
  struct Block *next;
  size_t used, cap;
  char data[];
} Block;

typedef struct {
  Block *head;
} Arena;

static void *arena_alloc(Arena *a, size_t n) {
  n = (n + 7) & ~(size_t)7;
  if (!a->head || a->head->used + n > a->head->cap) {
    size_t cap = n > (1u << 20) ? n : (1u << 20);
    Block *b = xmalloc(sizeof(Block) + cap);
    b->next = a->head;
    b->used = 0;
    b->cap = cap;
    a->head = b;
  }
  void *p = a->head->data + a->head->used;
  a->head->used += n;
  return p;
}

static void arena_free(Arena *a) {
  while (a->head) {
    Block *n = a->head->next;
    free(a->head);
    a->head = n;
  }
}

#define EMPTY 0xFFFFFFFFu
#define IDX(s) ((s)->ix & 0x7FFFFFFFu)

typedef struct {
  uint64_t k;   /* key_word */
  uint32_t ix;  /* index | long flag; EMPTY */
  uint32_t cnt; /* training-row count, low 32 bits (carry in count[]) */
} Slot;

/* Open addressing (linear probing, load <= 1/2) from byte strings to dense
 * indices 0, 1, ... in insertion order; per index: the key, a 32-bit value
 * and the carry of the slot's count. */
typedef struct {
  Slot *slots;
  uint32_t mask, shift, n, cap;
  const char **key;
  uint32_t *len, *val;
  uint64_t *count;
  Arena arena;
} Table;

static void table_init(Table *t, uint32_t hint) {
  uint32_t n = 16, bits = 4;
  while (n < 2 * (uint64_t)hint) n <<= 1, bits++;
  memset(t, 0, sizeof *t);
  t->slots = xmalloc(n * sizeof(Slot));
  memset(t->slots, 0xFF, n * sizeof(Slot));
  t->mask = n - 1;
  t->shift = 64 - bits;
}

static void table_free(Table *t) {
  free(t->slots);
  free(t->key);
  free(t->len);
  free(t->val);
  free(t->count);
  arena_free(&t->arena);
  memset(t, 0, sizeof *t);
}

static void table_grow(Table *t) {
  uint32_t n = (t->mask + 1) * 2, shift = t->shift - 1;
  Slot *slots = xmalloc(n * sizeof(Slot));
  memset(slots, 0xFF, n * sizeof(Slot));
  for (uint32_t i = 0; i <= t->mask; i++) {
    Slot s = t->slots[i];
    if (s.ix == EMPTY) continue;
    uint32_t j = (uint32_t)(slot_hash(s.k) >> shift);
    while (slots[j].ix != EMPTY) j = (j + 1) & (n - 1);
    slots[j] = s;
  }
  free(t->slots);
  t->slots = slots;
  t->mask = n - 1;
  t->shift = shift;
}

static inline int slot_is(const Table *t, const Slot *s, uint64_t k,
                          uint32_t lk, const char *p, uint32_t n) {
  return s->k == k && (s->ix & ~0x7FFFFFFFu) == lk &&
         (!lk || (t->len[IDX(s)] == n && memcmp(t->key[IDX(s)], p, n) == 0));
}

/* The slot of key p[0, n) (key_word k, long flag lk, slot_hash h) or NULL. */
static inline Slot *table_find_k(const Table *t, const char *p, uint32_t n,
                                 uint64_t k, uint32_t lk, uint64_t h) {
  for (uint32_t i = (uint32_t)(h >> t->shift);; i = (i + 1) & t->mask) {
    Slot *s = &t->slots[i];
    if (s->ix == EMPTY) return NULL;
    if (slot_is(t, s, k, lk, p, n)) return s;
  }
}

static __attribute__((noinline)) Slot *table_insert(
    Table *t, uint64_t k, uint32_t lk, uint64_t h, const char *p,
    uint32_t n) {
  if (2 * ((uint64_t)t->n + 1) > t->mask) table_grow(t);
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    if (t->cap > 0x7FFFFFFEu) die(EXIT_IO, "more than 2^31 distinct tokens");
    t->key = xrealloc(t->key, t->cap * sizeof(char *));
    t->len = xrealloc(t->len, t->cap * sizeof(uint32_t));
    t->val = xrealloc(t->val, t->cap * sizeof(uint32_t));
    t->count = xrealloc(t->count, t->cap * sizeof(uint64_t));
  }
  char *copy = arena_alloc(&t->arena, n + 8);
  memcpy(copy, p, n);
  memset(copy + n, 0, 8);
  uint32_t idx = t->n++;
  t->key[idx] = copy;
  t->len[idx] = n;
  t->val[idx] = 0;
  t->count[idx] = 0;
  uint32_t i = (uint32_t)(h >> t->shift);
  while (t->slots[i].ix != EMPTY) i = (i + 1) & t->mask;
  t->slots[i] = (Slot){k, idx | lk, 0};
  return &t->slots[i];
}

/* The slot of key p[0, n), inserted if new. */
static inline Slot *table_add_k(Table *t, const char *p, uint32_t n,
                                uint64_t k, uint32_t lk, uint64_t h) {
  Slot *s = table_find_k(t, p, n, k, lk, h);
  return s ? s : table_insert(t, k, lk, h, p, n);
}

/* Index of key p[0, n), or EMPTY. */
static inline uint32_t table_find(const Table *t, const char *p, uint32_t n) {
  uint32_t lk;
  uint64_t k = key_word(p, n, &lk);
  Slot *s = table_find_k(t, p, n, k, lk, slot_hash(k));
  return s ? IDX(s) : EMPTY;
}

/* Index of key p[0, n), inserted if new. */
static inline uint32_t table_add(Table *t, const char *p, uint32_t n) {
  uint32_t lk;
  uint64_t k = key_word(p, n, &lk);
  return IDX(table_add_k(t, p, n, k, lk, slot_hash(k)));
}

/* A slot's training-row count. */
static inline uint64_t slot_count(const Table *t, const Slot *s) {
  return s->cnt + t->count[IDX(s)];
}

static inline void slot_add_count(Table *t, Slot *s, int train) {
  s->cnt += (uint32_t)train;
  if (__builtin_expect(train && s->cnt == 0, 0))
    t->count[IDX(s)] += 1ull << 32;
}

/* ------------------------------------------------------------ the job */
typedef struct {
  int column, categorical, transform, cat_index, num_index;
} Field;

typedef struct {
  int file, shard[MAX_SPLITS]; /* shard of each split's rows */
  long long start, end;
  uint32_t crc;
  /* pass 1 -> 2: per row (J.row_units 16-bit words), each categorical
   * field's token index in worker `worker`'s tables (0xFFFF: the next
   * value of `over`), each numeric field's float bits (2 words), then
   * label | split << 1 */
  int cached, worker;
  size_t line_bytes; /* estimated from the chunk's first read */
  uint16_t *cache;
  size_t rows, cap;
  uint32_t *over;
  size_t over_n, over_cap;
  /* pass 2: the chunk's records per split, parked until its turn */
  int done;
  struct Buf *out;
} Chunk;

typedef struct {
  int threads, min_count, quiet;
  long long cache_bytes; /* budget of the pass-1 row cache */
  long long piece_bytes; /* chunks are cut into pieces of about this */
  int varint_words; /* 0: pass 2 encodes every varint (tests) */
  int sep; /* byte, or -1: runs of whitespace (libfm) */
  int num_columns, label_column, has_header, quoted_csv, libfm_labels;
  int num_fields, num_cat, num_num, row_units;
  Field fields[MAX_FIELDS];
  int hash_split, num_splits;
  double cum[MAX_SPLITS];
  uint64_t seed_key;
  int num_files;
  char *paths[MAX_FILES];
  int file_split[MAX_FILES]; /* -1: rows split by hash */
  /* bytes of a UTF-8 BOM at the file's start: skipped, and row offsets
   * (the split hash key) count from its end, as in the Python converter */
  long long origin[MAX_FILES];
  int fds[MAX_FILES]; /* open for pread */
  long long sizes[MAX_FILES];
  int num_chunks;
  Chunk *chunks;
  int num_shards[MAX_SPLITS];
  char **shard_paths[MAX_SPLITS];
  int *shard_fds[MAX_SPLITS];
  char **vocab_paths;
  /* Example pieces from data_tools.tfrecord.ExampleEncoder */
  int max_ids_len;
  unsigned char **heads;
  int *head_lens;
  unsigned char *dense_prefix, *label_entry[2];
  int dense_prefix_len, label_entry_len[2];
} Job;

static Job J;
static Table *g_vocab; /* [num_cat] token -> index; val = id, count */
static uint32_t *g_vocab_sizes;
/* [num_cat] 1: the workers' maps hold varint_word(id), not the id */
static unsigned char *g_map_encoded;

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
  return s;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static unsigned char *unhex(const char *s, int *len) {
  size_t n = strlen(s);
  if (n % 2) die(EXIT_JOB, "odd hex string in job file");
  unsigned char *out = xcalloc(n / 2 + 32, 1); /* copy_small may read 32 */
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) die(EXIT_JOB, "bad hex string in job file");
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  *len = (int)(n / 2);
  return out;
}

static int transform_code(const char *name) {
  static const char *names[] = {"none", "log_square_bucket", "log1p",
                                "plain_number", "hour_of_day", "weekday",
                                "libfm_token"};
  for (int i = 0; i < 7; i++)
    if (strcmp(name, names[i]) == 0) return i;
  die(EXIT_JOB, "unknown transform %s", name);
  return -1;
}

static void read_job(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) die(EXIT_JOB, "cannot open job file %s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  int chunk_i = 0, head_i = 0;
  J.sep = '\t';
  J.threads = 1;
  J.cache_bytes = -1;
  J.piece_bytes = 8ll << 20;
  J.varint_words = 1;
  J.min_count = 1;
  while (getline(&line, &cap, f) > 0) {
    char *s = trim(line), key[32];
    int off = 0;
    if (!*s || *s == '#') continue;
    if (sscanf(s, "%31s %n", key, &off) < 1) continue;
    char *rest = s + off;
    if (!strcmp(key, "threads")) J.threads = atoi(rest);
    else if (!strcmp(key, "min_count")) J.min_count = atoi(rest);
    else if (!strcmp(key, "quiet")) J.quiet = atoi(rest);
    else if (!strcmp(key, "cache_mb")) J.cache_bytes = atoll(rest) << 20;
    else if (!strcmp(key, "piece_bytes")) J.piece_bytes = atoll(rest);
    else if (!strcmp(key, "varint_words")) J.varint_words = atoi(rest);
    else if (!strcmp(key, "sep")) J.sep = atoi(rest);
    else if (!strcmp(key, "num_columns")) J.num_columns = atoi(rest);
    else if (!strcmp(key, "label_column")) J.label_column = atoi(rest);
    else if (!strcmp(key, "has_header")) J.has_header = atoi(rest);
    else if (!strcmp(key, "quoted_csv")) J.quoted_csv = atoi(rest);
    else if (!strcmp(key, "libfm_labels")) J.libfm_labels = atoi(rest);
    else if (!strcmp(key, "field")) {
      char kind[16], tr[32];
      int col;
      if (J.num_fields >= MAX_FIELDS) die(EXIT_JOB, "too many fields");
      if (sscanf(rest, "%d %15s %31s", &col, kind, tr) != 3)
        die(EXIT_JOB, "bad field line: %s", s);
      Field *fd = &J.fields[J.num_fields++];
      fd->column = col;
      fd->categorical = kind[0] == 'c';
      fd->transform = transform_code(tr);
      fd->cat_index = fd->categorical ? J.num_cat++ : -1;
      fd->num_index = fd->categorical ? -1 : J.num_num++;
    } else if (!strcmp(key, "splits")) {
      if (sscanf(rest, "%d %d", &J.hash_split, &J.num_splits) != 2 ||
          J.num_splits < 1 || J.num_splits > MAX_SPLITS)
        die(EXIT_JOB, "bad splits line: %s", s);
    } else if (!strcmp(key, "cum")) {
      char *p = rest;
      for (int i = 0; i < J.num_splits; i++) J.cum[i] = strtod(p, &p);
    } else if (!strcmp(key, "seed_key")) {
      J.seed_key = strtoull(rest, NULL, 10);
    } else if (!strcmp(key, "file")) {
      int split, n = 0;
      long long origin;
      if (J.num_files >= MAX_FILES) die(EXIT_JOB, "too many files");
      if (sscanf(rest, "%d %lld %n", &split, &origin, &n) < 2 || origin < 0)
        die(EXIT_JOB, "bad file line: %s", s);
      J.file_split[J.num_files] = split;
      J.origin[J.num_files] = origin;
      J.paths[J.num_files++] = strdup(rest + n);
    } else if (!strcmp(key, "chunks")) {
      J.num_chunks = atoi(rest);
      J.chunks = xcalloc(J.num_chunks, sizeof(Chunk));
    } else if (!strcmp(key, "chunk")) {
      Chunk *c = &J.chunks[chunk_i++];
      if (chunk_i > J.num_chunks ||
          sscanf(rest, "%d %lld %lld %d %d %d", &c->file, &c->start, &c->end,
                 &c->shard[0], &c->shard[1], &c->shard[2]) != 6)
        die(EXIT_JOB, "bad chunk line: %s", s);
    } else if (!strcmp(key, "shards")) {
      int split, n;
      if (sscanf(rest, "%d %d", &split, &n) != 2 || split < 0 ||
          split >= MAX_SPLITS)
        die(EXIT_JOB, "bad shards line: %s", s);
      J.num_shards[split] = n;
      J.shard_paths[split] = xcalloc(n, sizeof(char *));
    } else if (!strcmp(key, "shard")) {
      int split, k, n = 0;
      if (sscanf(rest, "%d %d %n", &split, &k, &n) < 2 || split < 0 ||
          split >= MAX_SPLITS || k < 0 || k >= J.num_shards[split])
        die(EXIT_JOB, "bad shard line: %s", s);
      J.shard_paths[split][k] = strdup(rest + n);
    } else if (!strcmp(key, "vocab")) {
      int i, n = 0;
      if (!J.vocab_paths) J.vocab_paths = xcalloc(MAX_FIELDS, sizeof(char *));
      if (sscanf(rest, "%d %n", &i, &n) < 1 || i < 0 || i >= MAX_FIELDS)
        die(EXIT_JOB, "bad vocab line: %s", s);
      J.vocab_paths[i] = strdup(rest + n);
    } else if (!strcmp(key, "max_ids_len")) {
      J.max_ids_len = atoi(rest);
      J.heads = xcalloc(J.max_ids_len + 1, sizeof(unsigned char *));
      J.head_lens = xcalloc(J.max_ids_len + 1, sizeof(int));
    } else if (!strcmp(key, "head")) {
      if (head_i > J.max_ids_len) die(EXIT_JOB, "too many head lines");
      J.heads[head_i] = unhex(rest, &J.head_lens[head_i]);
      head_i++;
    } else if (!strcmp(key, "dense_prefix")) {
      J.dense_prefix = unhex(rest, &J.dense_prefix_len);
    } else if (!strcmp(key, "label0")) {
      J.label_entry[0] = unhex(rest, &J.label_entry_len[0]);
    } else if (!strcmp(key, "label1")) {
      J.label_entry[1] = unhex(rest, &J.label_entry_len[1]);
    } else {
      die(EXIT_JOB, "unknown job key %s", key);
    }
  }
  free(line);
  fclose(f);
  if (chunk_i != J.num_chunks || head_i != J.max_ids_len + 1 ||
      !J.label_entry[0] || !J.label_entry[1] || J.num_files < 1 ||
      J.num_columns < 1 || J.threads < 1 || J.piece_bytes < 1)
    die(EXIT_JOB, "incomplete job file %s", path);
  if (J.max_ids_len < 5 * J.num_cat) /* a uint32 id takes up to 5 bytes */
    die(EXIT_JOB, "max_ids_len %d is below 5 per categorical field",
        J.max_ids_len);
  for (int i = 0; i < J.num_cat; i++)
    if (!J.vocab_paths || !J.vocab_paths[i])
      die(EXIT_JOB, "no vocab path for categorical field %d", i);
  for (int s = 0; s < J.num_splits; s++)
    for (int k = 0; k < J.num_shards[s]; k++)
      if (!J.shard_paths[s][k]) die(EXIT_JOB, "no path for shard %d/%d", s, k);
}

/* ------------------------------------------------------------ rows */
typedef struct {
  const char *p;
  uint32_t n;
} Tok;

/* Splits a line (no newline) into exactly num_columns columns; 0 if the
 * column count differs (the Python converter would reject the row). */
static inline int split_line(const char *s, const char *end, Tok *cols) {
  int ncol = J.num_columns, k = 0;
  const char *start = s;
  if (J.sep < 0) { /* libfm: single spaces only, no other whitespace */
    for (const char *q = s; q < end; q++) {
      char c = *q;
      if (c == ' ') {
        if (q == start || k >= ncol - 1) return 0;
        cols[k].p = start;
        cols[k++].n = (uint32_t)(q - start);
        start = q + 1;
      } else if (c == '\t' || c == '\r' || c == '\v' || c == '\f') {
        return 0;
      }
    }
    if (start == end) return 0;
  } else {
    const char sep = (char)J.sep;
#if defined(__SSE2__)
    const __m128i vs = _mm_set1_epi8(sep);
    while (s + 16 <= end) {
      unsigned m = (unsigned)_mm_movemask_epi8(
          _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)s), vs));
      while (m) {
        const char *q = s + __builtin_ctz(m);
        if (k >= ncol - 1) return 0;
        cols[k].p = start;
        cols[k++].n = (uint32_t)(q - start);
        start = q + 1;
        m &= m - 1;
      }
      s += 16;
    }
#endif
    for (; s < end; s++) {
      if (*s != sep) continue;
      if (k >= ncol - 1) return 0;
      cols[k].p = start;
      cols[k++].n = (uint32_t)(s - start);
      start = s + 1;
    }
  }
  cols[k].p = start;
  cols[k++].n = (uint32_t)(end - start);
  return k == ncol;
}

/* The separator-split of split_line and the search for the line's end in
 * one scan, for a separator other than '\r' and '\n': splits the line at
 * s into cols and returns its '\n' (or `end` if it has none before end).
 * *ok: it has exactly num_columns columns. A '\r' before the '\n' is left
 * out of the last column, as split_line's caller strips it. */
static inline const char *split_to_newline(const char *s, const char *end,
                                           Tok *cols, int *ok) {
  const int ncol = J.num_columns;
  const char sep = (char)J.sep, *start = s, *line = s;
  int k = 0;
#if defined(__SSE2__)
  const __m128i vs = _mm_set1_epi8(sep), vn = _mm_set1_epi8('\n');
  for (; s + 16 <= end; s += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)s);
    unsigned mt = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vs));
    unsigned mn = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vn));
    if (mn) mt &= (mn & -mn) - 1; /* separators before the newline */
    for (; mt; mt &= mt - 1) {
      const char *q = s + __builtin_ctz(mt);
      if (k >= ncol - 1) goto too_many;
      cols[k].p = start;
      cols[k++].n = (uint32_t)(q - start);
      start = q + 1;
    }
    if (mn) {
      s += __builtin_ctz(mn);
      goto found;
    }
  }
#endif
  for (; s < end && *s != '\n'; s++) {
    if (*s != sep) continue;
    if (k >= ncol - 1) goto too_many;
    cols[k].p = start;
    cols[k++].n = (uint32_t)(s - start);
    start = s + 1;
  }
found:
  cols[k].p = start;
  cols[k++].n = (uint32_t)(s - start);
  if (s > line && s[-1] == '\r') cols[k - 1].n--;
  *ok = k == ncol;
  return s;
too_many:
  *ok = 0;
  s = memchr(s, '\n', (size_t)(end - s));
  return s ? s : end;
}

static inline int parse_label(Tok t) {
  if (t.n == 1) {
    if (t.p[0] == '0') return 0;
    if (t.p[0] == '1') return 1;
  } else if (t.n == 3 && t.p[1] == '.' && t.p[2] == '0') {
    if (t.p[0] == '0') return 0;
    if (t.p[0] == '1') return 1;
  }
  if (J.libfm_labels) {
    if (t.n == 2 && t.p[1] == '1') {
      if (t.p[0] == '-') return 0;
      if (t.p[0] == '+') return 1;
    }
    if (t.n == 4 && memcmp(t.p, "-1.0", 4) == 0) return 0;
  }
  return -1;
}

static inline uint64_t splitmix64(uint64_t x) {
  return mix64(x + 0x9E3779B97F4A7C15ull);
}

/* data_tools.chunks.assign_splits for one row. */
static inline int split_of(long long offset) {
  uint64_t h = splitmix64((uint64_t)offset ^ J.seed_key);
  double u = (double)(h >> 11) / 9007199254740992.0;
  int s = (J.cum[0] <= u) + (J.num_splits > 1 && J.cum[1] <= u) +
          (J.num_splits > 2 && J.cum[2] <= u); /* no branch on u */
  return s < J.num_splits - 1 ? s : J.num_splits - 1;
}

/* Python's float() on the strict grammar [+-]?(d+.?d*|.d+)([eE][+-]?d+)?;
 * anything else (whitespace, '_', inf, nan, hex) returns 0 (unsupported). */
static int parse_number(Tok t, double *out) {
  char buf[64];
  const char *p = t.p, *e = t.p + t.n;
  if (t.n == 0 || t.n >= sizeof buf) return 0;
  if (*p == '+' || *p == '-') p++;
  int digits = 0;
  while (p < e && *p >= '0' && *p <= '9') p++, digits++;
  if (p < e && *p == '.') {
    p++;
    while (p < e && *p >= '0' && *p <= '9') p++, digits++;
  }
  if (!digits) return 0;
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    int ed = 0;
    while (p < e && *p >= '0' && *p <= '9') p++, ed++;
    if (!ed) return 0;
  }
  if (p != e) return 0;
  memcpy(buf, t.p, t.n);
  buf[t.n] = 0;
  double v = strtod(buf, NULL);
  if (!isfinite(v)) return 0;
  *out = v;
  return 1;
}

/* Called through pointers so that the compiler cannot replace them by
 * inline code that rounds differently from Python's math.log and **. */
static double (*volatile log_fn)(double) = log;
static double (*volatile pow_fn)(double, double) = pow;
static double (*volatile log1p_fn)(double) = log1p;

static int days_in_month(int y, int m) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return 29;
  return d[m - 1];
}

/* Applies a categorical transform; writes the token into buf (>= 32
 * bytes). Returns its length, or -1 for a value Python would reject. */
static int cat_transform(int tr, Tok raw, char *buf) {
  double v;
  switch (tr) {
    case T_LOG_SQUARE_BUCKET:
      if (raw.n == 0) return 0;
      if (!parse_number(raw, &v)) return -1;
      if (v > 2) {
        double b = floor(pow_fn(log_fn(v), 2.0));
        return snprintf(buf, 32, "%lld", (long long)b);
      }
      if (v < -1e18) return -1;
      return snprintf(buf, 32, "%lld", (long long)v);
    case T_HOUR_OF_DAY:
    case T_WEEKDAY: {
      if (raw.n != 8) return -1;
      int d[8];
      for (int i = 0; i < 8; i++) {
        if (raw.p[i] < '0' || raw.p[i] > '9') return -1;
        d[i] = raw.p[i] - '0';
      }
      int y = 2000 + d[0] * 10 + d[1], m = d[2] * 10 + d[3];
      int day = d[4] * 10 + d[5], hour = d[6] * 10 + d[7];
      if (m < 1 || m > 12 || day < 1 || day > days_in_month(y, m) ||
          hour > 23)
        return -1;
      if (tr == T_HOUR_OF_DAY) return snprintf(buf, 32, "%d", hour);
      /* days since 1970-01-01 (a Thursday, weekday 3 with Monday 0) */
      int yy = m <= 2 ? y - 1 : y, era = yy / 400;
      int yoe = yy - era * 400, mp = (m + 9) % 12;
      int doy = (153 * mp + 2) / 5 + day - 1;
      long days = era * 146097L + yoe * 365 + yoe / 4 - yoe / 100 + doy -
                  719468;
      return snprintf(buf, 32, "%ld", ((days + 3) % 7 + 7) % 7);
    }
    default:
      return -2; /* not a transform of the token itself */
  }
}

/* Numeric transform -> float32 bits; 0 for a value Python would reject. */
static int num_transform(int tr, Tok raw, uint32_t *bits) {
  double v = 0.0;
  if (tr == T_LOG1P) {
    if (raw.n) {
      if (!parse_number(raw, &v)) return 0;
      v = log1p_fn(0.0 > v ? 0.0 : v);
    }
  } else { /* plain_number: blank -> 0.0 */
    int blank = 1;
    for (uint32_t i = 0; i < raw.n; i++)
      if (raw.p[i] != ' ' && raw.p[i] != '\t') blank = 0;
    if (!blank && !parse_number(raw, &v)) return 0;
  }
  float f = (float)v;
  if (isinf(f)) return 0; /* struct.pack('f') raises OverflowError */
  memcpy(bits, &f, 4);
  return 1;
}

/* libfm_token: the column up to its first ':'. */
static inline Tok cat_token_libfm(Tok raw) {
  const char *c = memchr(raw.p, ':', raw.n);
  if (c) raw.n = (uint32_t)(c - raw.p);
  return raw;
}

/* The token of a categorical column without a memoized transform. */
static inline Tok cat_token(const Field *fd, Tok raw) {
  return fd->transform == T_LIBFM_TOKEN ? cat_token_libfm(raw) : raw;
}

static inline int needs_memo(const Field *fd) {
  return !fd->categorical || (fd->transform != T_NONE &&
                              fd->transform != T_LIBFM_TOKEN);
}

/* ------------------------------------------------------------ buffers */
/* Large arrays come from mmap with transparent huge pages where the kernel
 * allows them: one page fault per 2 MiB instead of 512. */
static void *big_realloc(void *p, size_t old, size_t n) {
  void *q = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (q == MAP_FAILED) die(EXIT_IO, "out of memory (%zu bytes)", n);
#ifdef MADV_HUGEPAGE
  madvise(q, n, MADV_HUGEPAGE);
#endif
  if (p) {
    memcpy(q, p, old);
    munmap(p, old);
  }
  return q;
}

static void big_free(void *p, size_t n) {
  if (p) munmap(p, n);
}

/* The row caches of a worker's chunks lie one after the other in one
 * region of address space (reserved with MAP_NORESERVE, as big as the
 * cache budget, with transparent huge pages where allowed). The chunk a
 * worker is caching is the region's last part, so it grows in place.
 * (A mapping per chunk was too small for huge pages: a page fault per
 * 4 KiB.) The memory goes back at exit; without the region (mmap refused
 * the reservation), chunks map their own. */
typedef struct {
  char *base;
  size_t used, size;
  int refused;
} Region;

static void *region_grow(Region *r, void *cur, size_t old, size_t n) {
  if (!r->base && !r->refused) {
    size_t huge = 2u << 20, size = ((size_t)J.cache_bytes + 2 * huge - 1) &
                                   ~(huge - 1);
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    r->refused = m == MAP_FAILED;
    if (!r->refused) {
#ifdef MADV_HUGEPAGE
      madvise(m, size, MADV_HUGEPAGE);
#endif
      r->base = m;
      r->size = size;
    }
  }
  if (!r->base) return big_realloc(cur, old, n);
  if (cur) r->used -= old; /* the last part: grows in place */
  if (r->used + n > r->size) die(EXIT_IO, "row cache region exhausted");
  void *p = r->base + r->used;
  r->used += n;
  return p;
}

/* Gives back a chunk's cache: the region's last part (pass 1, over the
 * budget) or, outside a region, its own mapping. */
static void region_free(Region *r, void *p, size_t n) {
  if (!r->base) big_free(p, n);
  else if (p && (char *)p + n == r->base + r->used) r->used -= n;
}

typedef struct Buf {
  unsigned char *p;
  size_t len, cap;
} Buf;

/* Buffers (output records, vocabulary text) are mappings of 2 MiB and up
 * (big_realloc), grown by mremap on Linux (no copy); they are reused
 * (pool_take) and never freed. */
static __attribute__((noinline)) void buf_grow(Buf *b, size_t cap) {
#if defined(__linux__)
  if (b->p) {
    void *q = mremap(b->p, b->cap, cap, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) die(EXIT_IO, "out of memory (%zu bytes)", cap);
#ifdef MADV_HUGEPAGE
    madvise(q, cap, MADV_HUGEPAGE);
#endif
    b->p = q;
    b->cap = cap;
    return;
  }
#endif
  b->p = big_realloc(b->p, b->cap, cap);
  b->cap = cap;
}

static inline unsigned char *buf_reserve(Buf *b, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : (2u << 20);
    while (cap < b->len + n) cap *= 2;
    buf_grow(b, cap);
  }
  return b->p + b->len;
}

static void write_all(int fd, const unsigned char *p, size_t n,
                      const char *path) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die(EXIT_IO, "cannot write %s: %s", path, strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
}

/* ------------------------------------------------------------ workers */
/* How pass 1 reads each field: the token as is (K_PLAIN, K_LIBFM cut at
 * ':'), or through a memo of the raw value (K_MEMO_CAT: raw -> token index
 * in `tok`; K_NUM: raw -> float bits). `probe` is the table looked up. */
enum { K_PLAIN, K_LIBFM, K_MEMO_CAT, K_NUM };


typedef struct {
  int col, kind, transform, pos; /* pos: first word in a cached row */
  Table *probe, *tok;
  uint32_t *small; /* numeric transforms: value 0..9999 (10000: empty) */
} Plan;

#define SMALL_MEMO 10001

typedef struct {
  Region cache;   /* pass 1: the row caches of its chunks */
  Plan *plan;     /* [num_fields] */
  Table *tok;     /* [num_cat] token -> index; count of training rows */
  Table *memo;    /* [num_fields] raw -> token index / float bits (pass 1) */
  Table *memo2;   /* [num_fields] raw -> id / float bits (pass 2, parsed) */
  uint32_t **map; /* [num_cat] token index -> id, after the vocabularies */
  uint32_t **fmap; /* [num_fields] map of the field; NULL: numeric */
  Buf out[MAX_SPLITS];
  uint64_t read[MAX_SPLITS], positives[MAX_SPLITS]; /* pass 2 */
  Tok *cols;
  int index, pass;
  pthread_t thread;
} Worker;

static Worker *g_workers;
static atomic_int g_next_chunk;
static atomic_llong g_rows_done;
static atomic_int g_workers_done;
static atomic_llong g_cache_used;
static pthread_mutex_t g_write_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_write_cond = PTHREAD_COND_INITIALIZER;
static int g_next_write;

/* The next cached row of chunk c (num_fields + 1 words), or NULL once the
 * cache budget is spent: the chunk then drops its cache and pass 2 parses
 * it again. */
static uint16_t *cache_row(Chunk *c) {
  size_t stride = (size_t)J.row_units;
  if (c->rows == c->cap) {
    /* first: the rows estimated from the chunk's first read (line_bytes),
     * + 1/8; then +1/2 at a time */
    size_t cap = c->cap + c->cap / 2 + 1024;
    if (!c->cap) {
      size_t rows = (size_t)(c->end - c->start) / c->line_bytes;
      cap = rows + rows / 8 + 1024;
    }
    long long add = (long long)((cap - c->cap) * stride * 2);
    if (atomic_fetch_add(&g_cache_used, add) + add > J.cache_bytes) {
      atomic_fetch_sub(&g_cache_used,
                       add + (long long)(c->cap * stride * 2));
      region_free(&g_workers[c->worker].cache, c->cache,
                  c->cap * stride * 2);
      free(c->over);
      c->cache = NULL;
      c->over = NULL;
      c->cached = 0;
      c->rows = c->cap = c->over_n = c->over_cap = 0;
      return NULL;
    }
    c->cache = region_grow(&g_workers[c->worker].cache, c->cache,
                           c->cap * stride * 2, cap * stride * 2);
    c->cap = cap;
  }
  return c->cache + stride * c->rows++;
}

/* A token index that does not fit a cached word (0xFFFF) goes to the
 * chunk's overflow list, read back in the same (row, field) order. */
static __attribute__((noinline)) uint16_t cache_overflow(Chunk *c,
                                                         uint32_t v) {
  if (c->over_n == c->over_cap) {
    c->over_cap = c->over_cap ? 2 * c->over_cap : 1024;
    c->over = xrealloc(c->over, c->over_cap * sizeof(uint32_t));
  }
  c->over[c->over_n++] = v;
  return 0xFFFF;
}

static inline void cache_put(Chunk *c, uint16_t *row, const Plan *pl,
                             uint32_t v) {
  if (pl->kind == K_NUM) {
    row[pl->pos] = (uint16_t)v;
    row[pl->pos + 1] = (uint16_t)(v >> 16);
  } else {
    row[pl->pos] = v < 0xFFFF ? (uint16_t)v : cache_overflow(c, v);
  }
}

/* The value of a memoized transform for a raw value not seen before:
 * a token index (K_MEMO_CAT) or float bits (K_NUM); 0 if Python would
 * reject the value. */
static __attribute__((noinline)) int transform_value(const Plan *pl, Tok key,
                                                     uint32_t *v) {
  if (pl->kind == K_MEMO_CAT) {
    char tbuf[32];
    int n = cat_transform(pl->transform, key, tbuf);
    if (n < 0) return 0;
    *v = table_add(pl->tok, tbuf, (uint32_t)n);
    return 1;
  }
  return num_transform(pl->transform, key, v);
}

/* Raw values of up to 4 digits (or empty) of a numeric transform, which
 * depends only on the value: their index in Plan.small, or -1. */
static inline int small_index(Tok key) {
  if (key.n > 4) return -1;
  if (key.n == 0) return SMALL_MEMO - 1;
  /* SWAR: the n digits, right-aligned in a 4-byte word ('0' padding) */
  uint32_t w;
  memcpy(&w, key.p, 4); /* key_word's padding guarantee covers 4 bytes */
  int pad = 8 * (4 - (int)key.n);
  w = (uint32_t)((uint64_t)w << pad) |
      ((uint32_t)((1ull << pad) - 1) & 0x30303030u);
  uint32_t d = w - 0x30303030u;
  /* every byte a digit: no byte borrowed below '0' or is above '9' */
  if (((w & 0xF0F0F0F0u) != 0x30303030u) | ((d + 0x76767676u) & 0x80808080u))
    return -1;
  d = (d * 10 + (d >> 8)) & 0x00FF00FFu; /* pairs: d0d1, d2d3 */
  return (int)((d * 100 + (d >> 16)) & 0xFFFFu);
}

/* Pass 1, one field of one row: finds (inserting if new) the token and
 * counts it when `train`; caches its index (or float bits) when `row`.
 * Returns 0 for a value Python would reject. */
static inline int count_field(Chunk *c, const Plan *pl, Tok key, int train,
                              uint16_t *row) {
  uint32_t v;
  if (pl->kind == K_NUM && !row) return 1;
  if (pl->small) {
    int i = small_index(key);
    if (i >= 0) {
      v = pl->small[i];
      if (v == EMPTY) {
        if (!transform_value(pl, key, &v)) return 0;
        pl->small[i] = v;
      }
      goto counted;
    }
  }
  if (pl->kind == K_LIBFM) key = cat_token_libfm(key);
  uint32_t lk;
  uint64_t k = key_word(key.p, key.n, &lk), h = slot_hash(k);
  Table *t = pl->probe;
  Slot *s = table_find_k(t, key.p, key.n, k, lk, h);
  if (pl->kind <= K_LIBFM) { /* the token itself */
    if (!s) s = table_insert(t, k, lk, h, key.p, key.n);
    slot_add_count(t, s, train);
    if (row) cache_put(c, row, pl, IDX(s));
    return 1;
  }
  if (!s) { /* memoized transform */
    if (!transform_value(pl, key, &v)) return 0;
    s = table_insert(t, k, lk, h, key.p, key.n);
    t->val[IDX(s)] = v;
  }
  v = t->val[IDX(s)];
counted:
  if (pl->kind == K_MEMO_CAT) pl->tok->count[v] += (uint64_t)train;
  if (row) cache_put(c, row, pl, v);
  return 1;
}

/* Pass 1 on one row: count_field for every field, with the common case
 * inline (a token of at most 8 bytes that is its own key word).
 * (This loop is most of the converter's time: keep it lean.) */
static inline int count_row(Chunk *c, const Plan *plan, const Tok *cols,
                            int train, uint16_t *row) {
  for (int f = 0; f < J.num_fields; f++) {
    const Plan *pl = &plan[f];
    Tok key = cols[pl->col];
    if (pl->kind == K_PLAIN && key.n <= 8) {
      uint64_t k;
      memcpy(&k, key.p, 8);
      k = (k & KEY_MASK[key.n]) | KEY_TAG[key.n]; /* = key_word, no branch */
      if (__builtin_expect(key.n < 8 || (k >> 56) >= 8, 1)) {
        Table *t = pl->probe;
        Slot *s = table_add_k(t, key.p, key.n, k, 0, slot_hash(k));
        slot_add_count(t, s, train);
        if (row) cache_put(c, row, pl, IDX(s));
        continue;
      }
    }
    if (!count_field(c, pl, key, train, row)) return 0;
  }
  return 1;
}

static inline unsigned char *put_varint(unsigned char *p, uint32_t v) {
  while (v >= 0x80) {
    *p++ = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  *p++ = (unsigned char)v;
  return p;
}

/* The varint of id < 2^21 as a word: its 1-3 bytes, and their count in
 * the top byte (pass 2 stores the word and moves on by the count). */
#define VARINT_WORD_LIMIT (1u << 21)

static uint32_t varint_word(uint32_t id) {
  unsigned char b[8] = {0};
  uint32_t n = (uint32_t)(put_varint(b, id) - b), x;
  memcpy(&x, b, 4);
  return (x & 0xFFFFFFu) | n << 24;
}

/* Masked CRC-32C of each record length's 8 bytes, 0..g_max_len. */
static uint32_t *g_len_crc;
static size_t g_max_len;

static void len_crc_init(void) {
  int label_len = J.label_entry_len[0] > J.label_entry_len[1]
                      ? J.label_entry_len[0] : J.label_entry_len[1];
  for (int i = 0; i <= J.max_ids_len; i++)
    if ((size_t)(J.head_lens[i] + i) > g_max_len)
      g_max_len = (size_t)(J.head_lens[i] + i);
  g_max_len += (J.num_num ? J.dense_prefix_len + 4 * J.num_num : 0) +
               label_len;
  g_len_crc = xmalloc((g_max_len + 1) * sizeof(uint32_t));
  for (uint64_t len = 0; len <= g_max_len; len++)
    g_len_crc[len] = mask_crc(crc32c(&len, 8)); /* little-endian (main) */
}

/* n bytes from src (padded to 32 readable bytes) to q (32 writable). */
static inline void copy_small(unsigned char *q, const unsigned char *src,
                              int n) {
  if (__builtin_expect(n <= 32, 1)) memcpy(q, src, 32);
  else memcpy(q, src, (size_t)n);
}

/* Appends one TFRecord: uint64 length, masked CRC of the length, the
 * tf.train.Example bytes (head, ids, dense, label), masked CRC of them.
 * `ids` is readable up to ids_len rounded up to 32 bytes. */
static inline void emit_record(Buf *out, const unsigned char *ids,
                               int ids_len, const uint32_t *dense,
                               int label) {
  size_t len = (size_t)J.head_lens[ids_len] + ids_len +
               (J.num_num ? J.dense_prefix_len + 4 * J.num_num : 0) +
               J.label_entry_len[label];
  /* + 32: the fixed-size copies may write past the end */
  unsigned char *p = buf_reserve(out, len + 16 + 32), *rec = p + 12, *q = rec;
  uint64_t len64 = len;
  memcpy(p, &len64, 8); /* little-endian hosts only (checked in main) */
  memcpy(p + 8, &g_len_crc[len], 4);
  copy_small(q, J.heads[ids_len], J.head_lens[ids_len]);
  q += J.head_lens[ids_len];
  for (int i = 0; i < ids_len; i += 32) memcpy(q + i, ids + i, 32);
  q += ids_len;
  if (J.num_num) {
    memcpy(q, J.dense_prefix, J.dense_prefix_len);
    q += J.dense_prefix_len;
    memcpy(q, dense, 4 * J.num_num);
    q += 4 * J.num_num;
  }
  copy_small(q, J.label_entry[label], J.label_entry_len[label]);
  q += J.label_entry_len[label];
  uint32_t dcrc = mask_crc(crc32c(rec, len));
  memcpy(q, &dcrc, 4);
  out->len += len + 16;
}

/* Pass 2, parsed rows: looks tokens up in the vocabularies. */
static inline int write_row(Worker *w, const Tok *cols, int label, Buf *out) {
  unsigned char ids[MAX_FIELDS * 10], *ip = ids;
  uint32_t dense[MAX_FIELDS];
  char tbuf[32];
  for (int f = 0; f < J.num_fields; f++) {
    const Field *fd = &J.fields[f];
    Tok raw = cols[fd->column];
    if (needs_memo(fd)) {
      Table *m = &w->memo2[f];
      uint32_t mi = table_find(m, raw.p, raw.n);
      if (mi == EMPTY) {
        uint32_t value;
        if (fd->categorical) {
          int n = cat_transform(fd->transform, raw, tbuf);
          if (n < 0) return 0;
          uint32_t gi = n ? table_find(&g_vocab[fd->cat_index], tbuf,
                                       (uint32_t)n)
                          : EMPTY;
          value = n == 0 ? 0 : gi == EMPTY ? 1 : g_vocab[fd->cat_index].val[gi];
        } else if (!num_transform(fd->transform, raw, &value)) {
          return 0;
        }
        mi = table_add(m, raw.p, raw.n);
        m->val[mi] = value;
      }
      if (fd->categorical) ip = put_varint(ip, m->val[mi]);
      else dense[fd->num_index] = m->val[mi];
    } else {
      Tok t = cat_token(fd, raw);
      uint32_t id = 0;
      if (t.n) {
        uint32_t gi = table_find(&g_vocab[fd->cat_index], t.p, t.n);
        id = gi == EMPTY ? 1 : g_vocab[fd->cat_index].val[gi];
      }
      ip = put_varint(ip, id);
    }
  }
  emit_record(out, ids, (int)(ip - ids), dense, label);
  return 1;
}

/* Pass 2, cached rows: token indices -> ids through the parsing worker's
 * map. */
static void write_cached(Worker *w, Chunk *c) {
  uint32_t *const *fmap = g_workers[c->worker].fmap;
  size_t stride = (size_t)J.row_units, oi = 0;
  unsigned char ids[MAX_FIELDS * 10];
  uint32_t dense[MAX_FIELDS];
  /* The common case has a loop of its own: every field categorical, with
   * ids as varint words (then row word f is field f's). */
  int words = J.num_num == 0;
  for (int f = 0; f < J.num_fields && words; f++)
    words = g_map_encoded[J.fields[f].cat_index];
  for (size_t r = 0; r < c->rows; r++) {
    const uint16_t *row = c->cache + r * stride;
    unsigned char *ip = ids;
    uint32_t *dp = dense;
    if (words) {
      for (int f = 0; f < J.num_fields; f++) {
        uint32_t v = row[f];
        uint32_t x = fmap[f][v != 0xFFFF ? v : c->over[oi++]];
        memcpy(ip, &x, 4); /* varint_word: no branch on the length */
        ip += x >> 24;
      }
    } else {
      for (int f = 0, k = 0; f < J.num_fields; f++) {
        const uint32_t *m = fmap[f];
        if (m) {
          uint32_t v = row[k++];
          uint32_t x = m[v != 0xFFFF ? v : c->over[oi++]];
          if (g_map_encoded[J.fields[f].cat_index]) {
            memcpy(ip, &x, 4);
            ip += x >> 24;
          } else {
            ip = put_varint(ip, x);
          }
        } else {
          *dp++ = row[k] | (uint32_t)row[k + 1] << 16;
          k += 2;
        }
      }
    }
    uint32_t tag = row[stride - 1];
    int s = (int)(tag >> 1);
    w->read[s]++;
    w->positives[s] += tag & 1;
    emit_record(&w->out[s], ids, (int)(ip - ids), dense, (int)(tag & 1));
    if ((r & 0xFFFF) == 0xFFFF) atomic_fetch_add(&g_rows_done, 0x10000);
  }
  atomic_fetch_add(&g_rows_done, (long long)(c->rows & 0xFFFF));
  atomic_fetch_sub(&g_cache_used, (long long)(c->cap * stride * 2));
  region_free(&g_workers[c->worker].cache, c->cache, c->cap * stride * 2);
  free(c->over);
  c->cache = NULL;
  c->over = NULL;
}

/* Processes the complete lines of buf[0, n) starting at file offset `off`;
 * returns the bytes consumed (up to the last newline, or all if `last`). */
static size_t process_lines(Worker *w, Chunk *c, const char *buf, size_t n,
                            long long off, int last, int *skip_header,
                            long long *rows) {
  const char *p = buf, *end = buf + n;
  const char *path = J.paths[c->file];
  int fsplit = J.file_split[c->file];
  /* one scan per line where the separator allows it (split_to_newline) */
  const int fused = J.sep >= 0 && J.sep != '\r' && J.sep != '\n';
  while (p < end) {
    Tok *cols = w->cols;
    int ok = 0;
    const char *nl = fused ? split_to_newline(p, end, cols, &ok)
                           : memchr(p, '\n', (size_t)(end - p));
    if (!nl || nl == end) {
      if (!last) break;
      nl = end;
    }
    const char *le = nl;
    if (le > p && le[-1] == '\r') le--;
    long long line_off = off + (p - buf);
    if (*skip_header) {
      *skip_header = 0;
    } else {
      if (J.quoted_csv && memchr(p, '"', (size_t)(le - p))) {
        unsupported(path, line_off, "quoted CSV field");
        return 0;
      }
      if (!fused) ok = split_line(p, le, cols);
      if (!ok) {
        unsupported(path, line_off, "blank line or wrong column count");
        return 0;
      }
      int label = parse_label(cols[J.label_column]);
      if (label < 0) {
        unsupported(path, line_off, "label other than 0/1");
        return 0;
      }
      int s = fsplit >= 0 ? fsplit : split_of(line_off - J.origin[c->file]);
      (*rows)++;
      if (w->pass == 1) {
        uint16_t *row = c->cached ? cache_row(c) : NULL;
        ok = !row && s != 0 ? 1 : count_row(c, w->plan, cols, s == 0, row);
        if (row) row[J.row_units - 1] = (uint16_t)(label | s << 1);
      } else {
        w->read[s]++;
        w->positives[s] += (uint64_t)label;
        ok = write_row(w, cols, label, &w->out[s]);
      }
      if (!ok) {
        unsupported(path, line_off, "value the fast path does not parse");
        return 0;
      }
    }
    p = nl + 1;
  }
  return p > end ? n : (size_t)(p - buf);
}

/* Processes chunk c of its file, read (pread) into the worker's buffer
 * *bufp a READ_BYTES piece at a time, with the CRC-32C of its bytes when
 * `crc_it`. The buffer keeps the partial line at its end for the next read
 * and is doubled for a line longer than itself. It is padded with 16 zero
 * bytes after the data, so that reading 8 bytes from the start of any
 * token (key_word) stays inside it. (Reading beats mapping the file: no
 * page faults, no page tables to tear down, and the bytes are in the cache
 * for the parsing.) */
#define READ_BYTES (256u << 10)

/* Up to n bytes of file f at offset pos into buf; at least one (the
 * caller reads inside the file's size, taken at start). */
static size_t read_at(int f, char *buf, size_t n, long long pos) {
  for (;;) {
    ssize_t got = pread(J.fds[f], buf, n, pos);
    if (got > 0) return (size_t)got;
    if (got < 0 && errno == EINTR) continue;
    die(EXIT_IO, "cannot read %s: %s", J.paths[f],
        got ? strerror(errno) : "the file got shorter");
  }
}

static void process_chunk(Worker *w, Chunk *c, char **bufp, size_t *capp,
                          int crc_it) {
  long long pos = c->start, base = c->start, rows = 0, rows_flushed = 0;
  size_t have = 0;
  int skip_header = J.has_header && c->start == 0, first = 1;
  size_t skip = c->start == 0 ? (size_t)J.origin[c->file] : 0; /* a BOM */
  uint32_t crc = 0xFFFFFFFFu;
  if (*capp < READ_BYTES) {
    *capp = READ_BYTES;
    *bufp = xrealloc(*bufp, READ_BYTES + 16);
  }
  while (!atomic_load(&g_stop)) {
    while (have < *capp && pos < c->end) {
      size_t want = *capp - have;
      if ((long long)want > c->end - pos) want = (size_t)(c->end - pos);
      size_t got = read_at(c->file, *bufp + have, want, pos);
      have += got;
      pos += (long long)got;
    }
    if (!have) break;
    memset(*bufp + have, 0, 16);
    if (first && c->cached) { /* cache_row's estimate: bytes per line */
      size_t lines = 1;
      for (const char *p = *bufp, *e = p + have;
           (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        lines++;
      c->line_bytes = have / lines + 1;
      first = 0;
    }
    int last = pos == c->end;
    size_t used = skip + process_lines(w, c, *bufp + skip, have - skip,
                                       base + (long long)skip, last,
                                       &skip_header, &rows);
    skip = 0;
    if (atomic_load(&g_stop)) break;
    if (used == 0) { /* a line longer than the buffer */
      *capp *= 2;
      *bufp = xrealloc(*bufp, *capp + 16);
      continue;
    }
    if (crc_it) crc = crc_update(crc, (const unsigned char *)*bufp, used);
    memmove(*bufp, *bufp + used, have - used);
    have -= used;
    base += (long long)used;
    atomic_fetch_add(&g_rows_done, rows - rows_flushed);
    rows_flushed = rows;
    if (last && !have) break;
  }
  if (crc_it) c->crc = crc ^ 0xFFFFFFFFu;
}

/* Output buffers are recycled through a pool (under g_write_lock). */
static Buf *g_pool;
static int g_pool_n, g_pool_cap, g_writing;

static Buf pool_take(void) {
  Buf b = {0};
  if (g_pool_n) b = g_pool[--g_pool_n];
  b.len = 0;
  return b;
}

static void pool_give(Buf b) {
  if (!b.p) return;
  if (g_pool_n == g_pool_cap) {
    g_pool_cap = g_pool_cap ? 2 * g_pool_cap : 16;
    g_pool = xrealloc(g_pool, g_pool_cap * sizeof(Buf));
  }
  g_pool[g_pool_n++] = b;
}

/* Parks chunk i's records; whichever thread finds the writer idle writes
 * every finished chunk from g_next_write on, in chunk order, so that no
 * thread waits for its turn. */
static void finish_chunk(Worker *w, int i) {
  Chunk *c = &J.chunks[i];
  pthread_mutex_lock(&g_write_lock);
  for (int s = 0; s < J.num_splits; s++) {
    c->out[s] = w->out[s];
    w->out[s] = pool_take();
  }
  c->done = 1;
  if (g_writing) {
    pthread_mutex_unlock(&g_write_lock);
    return;
  }
  g_writing = 1;
  while (g_next_write < J.num_chunks && J.chunks[g_next_write].done) {
    Chunk *d = &J.chunks[g_next_write];
    pthread_mutex_unlock(&g_write_lock);
    for (int s = 0; s < J.num_splits; s++)
      if (d->out[s].len)
        write_all(J.shard_fds[s][d->shard[s]], d->out[s].p, d->out[s].len,
                  J.shard_paths[s][d->shard[s]]);
    pthread_mutex_lock(&g_write_lock);
    for (int s = 0; s < J.num_splits; s++) pool_give(d->out[s]);
    g_next_write++;
    pthread_cond_broadcast(&g_write_cond);
  }
  g_writing = 0;
  pthread_mutex_unlock(&g_write_lock);
}

static void *worker_main(void *arg) {
  Worker *w = arg;
  char *buf = NULL;
  size_t cap = 0;
  for (;;) {
    int i = atomic_fetch_add(&g_next_chunk, 1);
    if (i >= J.num_chunks || atomic_load(&g_stop)) break;
    Chunk *c = &J.chunks[i];
    if (w->pass == 1) { /* the training file: counts (+ cache), CRC */
      if (c->file != 0) continue;
      c->worker = w->index;
      process_chunk(w, c, &buf, &cap, 1);
      continue;
    }
    /* Bound the parked output: stay within 4 chunks per thread of the
     * next one to write. */
    pthread_mutex_lock(&g_write_lock);
    while (i - g_next_write > 4 * J.threads && !atomic_load(&g_stop))
      pthread_cond_wait(&g_write_cond, &g_write_lock);
    pthread_mutex_unlock(&g_write_lock);
    if (c->cached) write_cached(w, c);
    else process_chunk(w, c, &buf, &cap, c->file != 0);
    if (atomic_load(&g_stop)) break;
    finish_chunk(w, i);
  }
  free(buf);
  pthread_mutex_lock(&g_write_lock);
  atomic_fetch_add(&g_workers_done, 1);
  pthread_cond_broadcast(&g_write_cond);
  pthread_mutex_unlock(&g_write_lock);
  return NULL;
}

/* The offset after the first '\n' in bytes [from, end) of file f, or
 * end. */
static long long line_end(int f, long long from, long long end) {
  char buf[1 << 16];
  while (from < end) {
    size_t want = end - from < (long long)sizeof buf ? (size_t)(end - from)
                                                     : sizeof buf;
    size_t got = read_at(f, buf, want, from);
    const char *nl = memchr(buf, '\n', got);
    if (nl) return from + (nl - buf) + 1;
    from += (long long)got;
  }
  return end;
}

/* Cuts the job's chunks into pieces at line starts, so that threads share
 * the work evenly: each chunk in equal pieces of at most piece_bytes, and
 * of a quarter of that in the job's last 2 * threads * piece_bytes (so
 * that no thread is left with a long piece at the end). Pieces keep their
 * chunk's file and shards and are written in order, so the output does
 * not change. */
static void split_chunks(void) {
  const long long piece = J.piece_bytes, tail = 2ll * J.threads * piece;
  int n = 0, cap = J.num_chunks;
  Chunk *out = xcalloc(cap, sizeof(Chunk));
  long long total = 0, pos = 0;
  for (int i = 0; i < J.num_chunks; i++)
    total += J.chunks[i].end - J.chunks[i].start;
  for (int i = 0; i < J.num_chunks; i++) {
    Chunk c = J.chunks[i];
    long long a = c.start;
    while (a < c.end) {
      /* the rest of the chunk in equal pieces of at most `piece` bytes,
       * a quarter of that in the job's last `tail` bytes */
      long long rest = c.end - a, left = total - pos - (a - c.start);
      long long size = left > tail || piece < 4 ? piece : piece / 4;
      long long k = (rest + size - 1) / size, b = c.end;
      if (k > 1) b = line_end(c.file, a + rest / k - 1, c.end);
      if (n == cap) out = xrealloc(out, (cap *= 2) * sizeof(Chunk));
      out[n] = c;
      out[n].start = a;
      out[n].end = b;
      n++;
      a = b;
    }
    if (c.start == c.end) { /* keep empty chunks (they cover nothing) */
      if (n == cap) out = xrealloc(out, (cap *= 2) * sizeof(Chunk));
      out[n++] = c;
    }
    pos += c.end - c.start;
  }
  free(J.chunks);
  J.chunks = out;
  J.num_chunks = n;
  for (int i = 0; i < n; i++)
    J.chunks[i].out = xcalloc(MAX_SPLITS, sizeof(Buf));
}

/* CTRCONVERT_TIMES=1: seconds of each phase on stderr. */
static double g_t0;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void phase_done(const char *name) {
  static int on = -1;
  if (on < 0) on = getenv("CTRCONVERT_TIMES") != NULL;
  double t = now();
  if (on) fprintf(stderr, "ctrconvert: %s %.3f s\n", name, t - g_t0);
  g_t0 = t;
}

static void run_pass(int pass, const char *name) {
  atomic_store(&g_next_chunk, 0);
  atomic_store(&g_rows_done, 0);
  atomic_store(&g_workers_done, 0);
  g_next_write = 0;
  for (int t = 0; t < J.threads; t++) {
    g_workers[t].pass = pass;
    if (pthread_create(&g_workers[t].thread, NULL, worker_main,
                       &g_workers[t]))
      die(EXIT_IO, "cannot start a thread");
  }
  long long shown = -1;
  pthread_mutex_lock(&g_write_lock);
  while (atomic_load(&g_workers_done) < J.threads) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 100 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&g_write_cond, &g_write_lock, &deadline);
    long long done = atomic_load(&g_rows_done);
    if (!J.quiet && done != shown &&
        atomic_load(&g_workers_done) < J.threads) {
      printf("progress %s %lld\n", name, done);
      fflush(stdout);
      shown = done;
    }
  }
  pthread_mutex_unlock(&g_write_lock);
  for (int t = 0; t < J.threads; t++) pthread_join(g_workers[t].thread, NULL);
  if (!J.quiet) {
    printf("progress %s %lld\n", name, (long long)atomic_load(&g_rows_done));
    fflush(stdout);
  }
}

/* Runs a pass and records its time; 0 (after printing why) when a row
 * the fast path does not handle stopped it. */
static int finish_pass(int pass, const char *name, const char *phase) {
  run_pass(pass, name);
  phase_done(phase);
  if (!atomic_load(&g_stop)) return 1;
  printf("unsupported %s\n", g_msg);
  return 0;
}

/* ------------------------------------------------------------ vocab */
/* qsort's comparison context (qsort_r's argument order differs between
 * glibc and the BSDs, so it is not used). */
static _Thread_local const Table *t_sort_table;

static int cmp_vocab(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  const Table *g = t_sort_table;
  if (g->count[x] != g->count[y]) return g->count[x] > g->count[y] ? -1 : 1;
  uint32_t nx = g->len[x], ny = g->len[y], n = nx < ny ? nx : ny;
  int c = memcmp(g->key[x], g->key[y], n);
  if (c) return c;
  return nx < ny ? -1 : nx > ny;
}

/* Merges the workers' counts of categorical field ci, sorts the vocabulary
 * (count >= min_count, by decreasing count, then bytes), writes it, and
 * sets every worker's token index -> id map (ids as varint_word(id) when
 * all fit, g_map_encoded). */
static void build_vocab(int ci) {
  Table *g = &g_vocab[ci];
  uint32_t total = 0;
  for (int t = 0; t < J.threads; t++) total += g_workers[t].tok[ci].n;
  uint32_t *sizes = xcalloc(J.threads, sizeof(uint32_t));
  table_init(g, total);
  for (int t = 0; t < J.threads; t++) {
    Worker *w = &g_workers[t];
    Table *tt = &w->tok[ci];
    sizes[t] = tt->n;
    w->map[ci] = xmalloc((tt->n + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i <= tt->mask; i++) {
      const Slot *s = &tt->slots[i];
      if (s->ix == EMPTY) continue;
      uint32_t gi = table_add(g, tt->key[IDX(s)], tt->len[IDX(s)]);
      g->count[gi] += slot_count(tt, s);
      w->map[ci][IDX(s)] = gi;
    }
    /* Small tables are left to the exit: freeing them would cost more
     * (munmap, with its TLB shootdown) than their memory is worth. */
    if (tt->n >= (1u << 16)) table_free(tt);
  }
  uint32_t *list = xmalloc((g->n + 1) * sizeof(uint32_t)), n = 0;
  for (uint32_t i = 0; i < g->n; i++) {
    g->val[i] = g->len[i] ? 1 : 0; /* OOV, or padding for "" */
    if (g->len[i] && g->count[i] >= (uint64_t)J.min_count) list[n++] = i;
  }
  t_sort_table = g;
  qsort(list, n, sizeof(uint32_t), cmp_vocab);
  /* one write per file from a per-thread buffer (a stdio buffer is an
   * mmap and a munmap per file, and each munmap stops the other threads) */
  static _Thread_local Buf text;
  text.len = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len = g->len[list[i]];
    unsigned char *q = buf_reserve(&text, len + 1);
    g->val[list[i]] = i + 2;
    memcpy(q, g->key[list[i]], len);
    q[len] = '\n';
    text.len += len + 1;
  }
  int fd = open(J.vocab_paths[ci], O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0)
    die(EXIT_IO, "cannot write %s: %s", J.vocab_paths[ci], strerror(errno));
  write_all(fd, text.p, text.len, J.vocab_paths[ci]);
  if (close(fd)) die(EXIT_IO, "cannot write %s", J.vocab_paths[ci]);
  /* ids < 2^21 */
  g_map_encoded[ci] = J.varint_words && g->n + 2 <= VARINT_WORD_LIMIT;
  for (int t = 0; t < J.threads; t++) {
    uint32_t *map = g_workers[t].map[ci];
    if (g_map_encoded[ci])
      for (uint32_t i = 0; i < sizes[t]; i++)
        map[i] = varint_word(g->val[map[i]]);
    else
      for (uint32_t i = 0; i < sizes[t]; i++) map[i] = g->val[map[i]];
  }
  free(sizes);
  g_vocab_sizes[ci] = n;
  free(list);
}

static atomic_int g_next_vocab;

static void *vocab_main(void *arg) {
  (void)arg;
  for (int i; (i = atomic_fetch_add(&g_next_vocab, 1)) < J.num_cat;)
    build_vocab(i);
  return NULL;
}

/* The fields' vocabularies are independent: threads take them in turn. */
static void build_vocabs(void) {
  pthread_t *th = xcalloc(J.threads, sizeof(pthread_t));
  g_vocab_sizes = xcalloc(J.num_cat + 1, sizeof(uint32_t));
  g_map_encoded = xcalloc(J.num_cat + 1, 1);
  for (int t = 1; t < J.threads; t++)
    if (pthread_create(&th[t], NULL, vocab_main, NULL))
      die(EXIT_IO, "cannot start a thread");
  vocab_main(NULL);
  for (int t = 1; t < J.threads; t++) pthread_join(th[t], NULL);
  for (int i = 0; i < J.num_cat; i++)
    printf("vocab %d %u\n", i, g_vocab_sizes[i]);
  free(th);
}

/* ------------------------------------------------------------ main */
int main(int argc, char **argv) {
  uint16_t one = 1;
  if (argc != 2) die(EXIT_JOB, "usage: ctrconvert JOB_FILE");
  if (*(unsigned char *)&one != 1) die(EXIT_UNSUPPORTED, "big-endian host");
  g_t0 = now();
  crc_init();
  crc_select();
  x2n_init();
  read_job(argv[1]);
  if (J.cache_bytes < 0) /* default: a quarter of the RAM */
    J.cache_bytes = (long long)sysconf(_SC_PHYS_PAGES) *
                    sysconf(_SC_PAGE_SIZE) / 4;
  for (int i = 0; i < J.num_files; i++) {
    struct stat st;
    int fd = open(J.paths[i], O_RDONLY);
    if (fd < 0 || fstat(fd, &st))
      die(EXIT_IO, "cannot open %s: %s", J.paths[i], strerror(errno));
    J.sizes[i] = st.st_size;
    J.fds[i] = fd;
  }
  for (int i = 0; i < J.num_chunks; i++) {
    const Chunk *c = &J.chunks[i];
    if (c->file < 0 || c->file >= J.num_files || c->start < 0 ||
        c->end < c->start || c->end > J.sizes[c->file])
      die(EXIT_JOB, "chunk %d is outside its file (did it change?)", i);
  }
  split_chunks();
  J.row_units = J.num_cat + 2 * J.num_num + 1;
  g_workers = xcalloc(J.threads, sizeof(Worker));
  for (int t = 0; t < J.threads; t++) {
    Worker *w = &g_workers[t];
    w->index = t;
    w->tok = xcalloc(J.num_cat, sizeof(Table));
    w->memo = xcalloc(J.num_fields, sizeof(Table));
    w->memo2 = xcalloc(J.num_fields, sizeof(Table));
    w->map = xcalloc(J.num_cat + 1, sizeof(uint32_t *));
    for (int i = 0; i < J.num_cat; i++) table_init(&w->tok[i], 64);
    for (int f = 0; f < J.num_fields; f++) {
      table_init(&w->memo[f], 64);
      table_init(&w->memo2[f], 64);
    }
    w->cols = xcalloc(J.num_columns + 1, sizeof(Tok));

    w->plan = xcalloc(J.num_fields + 1, sizeof(Plan));
    for (int f = 0, pos = 0; f < J.num_fields; f++) {
      const Field *fd = &J.fields[f];
      Plan *pl = &w->plan[f];
      pl->pos = pos;
      pos += fd->categorical ? 1 : 2;
      pl->col = fd->column;
      pl->transform = fd->transform;
      pl->tok = fd->categorical ? &w->tok[fd->cat_index] : NULL;
      pl->kind = !fd->categorical ? K_NUM
                 : needs_memo(fd) ? K_MEMO_CAT
                 : fd->transform == T_LIBFM_TOKEN ? K_LIBFM : K_PLAIN;
      pl->probe = pl->kind >= K_MEMO_CAT ? &w->memo[f] : pl->tok;
      if (fd->transform == T_LOG_SQUARE_BUCKET || fd->transform == T_LOG1P ||
          fd->transform == T_PLAIN_NUMBER) {
        pl->small = xmalloc(SMALL_MEMO * sizeof(uint32_t));
        memset(pl->small, 0xFF, SMALL_MEMO * sizeof(uint32_t));
      }
    }
  }
  for (int i = 0; i < J.num_chunks; i++)
    J.chunks[i].cached = J.chunks[i].file == 0 && J.cache_bytes > 0;

  len_crc_init();
  phase_done("setup");
  if (!finish_pass(1, "count", "pass 1 (count)")) return EXIT_UNSUPPORTED;
  for (int t = 0; t < J.threads; t++)
    for (int f = 0; f < J.num_fields; f++) table_free(&g_workers[t].memo[f]);
  g_vocab = xcalloc(J.num_cat + 1, sizeof(Table));
  build_vocabs();
  for (int t = 0; t < J.threads; t++) {
    Worker *w = &g_workers[t];
    w->fmap = xcalloc(J.num_fields + 1, sizeof(uint32_t *));
    for (int f = 0; f < J.num_fields; f++)
      if (J.fields[f].categorical) w->fmap[f] = w->map[J.fields[f].cat_index];
  }
  phase_done("vocabularies");

  for (int s = 0; s < J.num_splits; s++) {
    J.shard_fds[s] = xcalloc(J.num_shards[s] + 1, sizeof(int));
    for (int k = 0; k < J.num_shards[s]; k++) {
      J.shard_fds[s][k] = open(J.shard_paths[s][k],
                               O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (J.shard_fds[s][k] < 0)
        die(EXIT_IO, "cannot create %s: %s", J.shard_paths[s][k],
            strerror(errno));
    }
  }
  if (!finish_pass(2, "write", "pass 2 (write)")) return EXIT_UNSUPPORTED;
  for (int s = 0; s < J.num_splits; s++)
    for (int k = 0; k < J.num_shards[s]; k++)
      if (close(J.shard_fds[s][k]))
        die(EXIT_IO, "cannot write %s: %s", J.shard_paths[s][k],
            strerror(errno));
  uint64_t read[MAX_SPLITS] = {0}, positives[MAX_SPLITS] = {0};
  for (int t = 0; t < J.threads; t++)
    for (int s = 0; s < J.num_splits; s++) {
      read[s] += g_workers[t].read[s];
      positives[s] += g_workers[t].positives[s];
    }
  for (int s = 0; s < J.num_splits; s++)
    printf("read %d %llu\npositives %d %llu\n", s,
           (unsigned long long)read[s], s, (unsigned long long)positives[s]);
  for (int i = 0; i < J.num_files; i++) { /* chunks cover each file */
    uint32_t crc = 0;
    for (int c = 0; c < J.num_chunks; c++)
      if (J.chunks[c].file == i)
        crc = crc32c_combine(crc, J.chunks[c].crc,
                             (uint64_t)(J.chunks[c].end - J.chunks[c].start));
    printf("crc32c %d %08x\n", i, crc);
  }
  phase_done("close");
  printf("done\n");
  return 0;
}
