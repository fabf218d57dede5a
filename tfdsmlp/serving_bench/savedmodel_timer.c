/* Times one signature of a SavedModel the way TF Serving runs it: the
 * SavedModel loaded by TensorFlow's C++ loader (through the C API,
 * TF_LoadSessionFromSavedModel, tag "serve") and called with
 * TF_SessionRun, no Python anywhere in the timed path.
 *
 *   savedmodel_timer EXPORT_DIR REPEATS OUT_NAME... -- IN_SPEC...
 *
 * OUT_NAME: a graph tensor "op:index" to fetch (the signature's outputs).
 * IN_SPEC: "op:index=dtype:rows:cols:file" with dtype int64, float or
 * string; file holds rows*cols values, raw little-endian for int64 and
 * float, one value per line for string (cols 0: a rank-1 [rows] tensor).
 * Prints one JSON line: load seconds, first-call ms, then p50/p90/p99/mean
 * ms over REPEATS calls after 20 warm-up calls.
 * Built by tfdsmlp/serving_bench/harness.py against the TensorFlow of the
 * environment (libtensorflow_cc.so.2 exports the C API). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensorflow/c/c_api.h"
#include "tensorflow/c/tf_tstring.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, TF_Status *s) {
  fprintf(stderr, "savedmodel_timer: %s: %s\n", what,
          s ? TF_Message(s) : "");
  exit(2);
}

static char *read_file(const char *path, long *size) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "savedmodel_timer: cannot open %s\n", path); exit(2); }
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(*size + 1);
  if (fread(buf, 1, *size, f) != (size_t)*size) { fprintf(stderr, "short read %s\n", path); exit(2); }
  buf[*size] = 0;
  fclose(f);
  return buf;
}

static TF_Output graph_output(TF_Graph *g, const char *name) {
  char op[512];
  strncpy(op, name, sizeof op - 1);
  op[sizeof op - 1] = 0;
  int index = 0;
  char *colon = strrchr(op, ':');
  if (colon) { *colon = 0; index = atoi(colon + 1); }
  TF_Operation *o = TF_GraphOperationByName(g, op);
  if (!o) { fprintf(stderr, "savedmodel_timer: no op %s in the graph\n", op); exit(2); }
  TF_Output out = {o, index};
  return out;
}

static TF_Tensor *make_input(const char *spec, char *name, size_t name_len) {
  /* name=dtype:rows:cols:file */
  const char *eq = strchr(spec, '=');
  if (!eq) { fprintf(stderr, "bad input spec %s\n", spec); exit(2); }
  size_t n = (size_t)(eq - spec) < name_len - 1 ? (size_t)(eq - spec) : name_len - 1;
  memcpy(name, spec, n);
  name[n] = 0;
  char dtype[16], path[1024];
  long rows, cols;
  if (sscanf(eq + 1, "%15[^:]:%ld:%ld:%1023s", dtype, &rows, &cols, path) != 4) {
    fprintf(stderr, "bad input spec %s\n", spec); exit(2);
  }
  int64_t dims[2] = {rows, cols};
  int rank = cols > 0 ? 2 : 1;
  long count = rows * (cols > 0 ? cols : 1), size;
  char *data = read_file(path, &size);
  TF_Tensor *t;
  if (!strcmp(dtype, "int64") || !strcmp(dtype, "float")) {
    TF_DataType dt = dtype[0] == 'i' ? TF_INT64 : TF_FLOAT;
    size_t bytes = count * (dt == TF_INT64 ? 8 : 4);
    if ((size_t)size != bytes) { fprintf(stderr, "%s: %ld bytes, want %zu\n", path, size, bytes); exit(2); }
    t = TF_AllocateTensor(dt, dims, rank, bytes);
    memcpy(TF_TensorData(t), data, bytes);
  } else if (!strcmp(dtype, "string")) {
    t = TF_AllocateTensor(TF_STRING, dims, rank, count * sizeof(TF_TString));
    TF_TString *s = (TF_TString *)TF_TensorData(t);
    char *line = data;
    for (long i = 0; i < count; i++) {
      char *end = strchr(line, '\n');
      if (!end) { fprintf(stderr, "%s: fewer than %ld lines\n", path, count); exit(2); }
      TF_TString_Init(&s[i]);
      TF_TString_Copy(&s[i], line, (size_t)(end - line));
      line = end + 1;
    }
  } else {
    fprintf(stderr, "bad dtype %s\n", dtype); exit(2);
  }
  free(data);
  return t;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: see the source\n"); return 2; }
  const char *dir = argv[1];
  int repeats = atoi(argv[2]);
  int sep = 3;
  while (sep < argc && strcmp(argv[sep], "--")) sep++;
  int n_out = sep - 3, n_in = argc - sep - 1;
  TF_Status *st = TF_NewStatus();
  TF_Graph *g = TF_NewGraph();
  TF_SessionOptions *opts = TF_NewSessionOptions();
  const char *tags[] = {"serve"};
  double t0 = now_ms();
  TF_Session *sess = TF_LoadSessionFromSavedModel(opts, NULL, dir, tags, 1, g,
                                                  NULL, st);
  if (TF_GetCode(st) != TF_OK) die("load", st);
  double load_ms = now_ms() - t0;
  TF_Output *outs = calloc(n_out, sizeof *outs);
  for (int i = 0; i < n_out; i++) outs[i] = graph_output(g, argv[3 + i]);
  TF_Output *ins = calloc(n_in, sizeof *ins);
  TF_Tensor **vals = calloc(n_in, sizeof *vals);
  for (int i = 0; i < n_in; i++) {
    char name[512];
    vals[i] = make_input(argv[sep + 1 + i], name, sizeof name);
    ins[i] = graph_output(g, name);
  }
  TF_Tensor **res = calloc(n_out, sizeof *res);
  double *ms = calloc(repeats, sizeof *ms), first = 0;
  for (int r = -20; r < repeats; r++) {
    double a = now_ms();
    TF_SessionRun(sess, NULL, ins, vals, n_in, outs, res, n_out, NULL, 0,
                  NULL, st);
    double b = now_ms();
    if (TF_GetCode(st) != TF_OK) die("run", st);
    for (int i = 0; i < n_out; i++) TF_DeleteTensor(res[i]);
    if (r == -20) first = b - a;
    if (r >= 0) ms[r] = b - a;
  }
  double sum = 0;
  for (int r = 0; r < repeats; r++) sum += ms[r];
  qsort(ms, repeats, sizeof *ms, cmp);
  printf("{\"load_s\": %.3f, \"first_call_ms\": %.3f, \"p50_ms\": %.4f, "
         "\"p90_ms\": %.4f, \"p99_ms\": %.4f, \"mean_ms\": %.4f, "
         "\"repeats\": %d}\n", load_ms / 1e3, first, ms[repeats / 2],
         ms[(int)(repeats * 0.9)], ms[(int)(repeats * 0.99)], sum / repeats,
         repeats);
  TF_CloseSession(sess, st);
  TF_DeleteSession(sess, st);
  return 0;
}
