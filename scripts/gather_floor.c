/* The hardware floor of the embedding stage on this machine, without torch: hand-written OpenMP loops.

   For (B*T, D) = (8192, 768) fp32 rows and V = 50257 (GPT-2's shapes) it times, medians of 50 runs:
     copy    memcpy of 8192 rows from a source the size of the output (rotating over 12 sources, so
             the source is not cache-resident: the memory-bandwidth bound);
     gather  memcpy of 8192 random rows of the 154 MB token table (what any token lookup must do);
     fused   out[i] = wte[ids[i]] + wpe[i % 1024] in one pass (the best a fused kernel can do);
   and prints gather and fused as ratios of copy. If `fused / copy` is well above 1, no embedding
   implementation on this machine can reach the copy bound: random rows cost more than a streaming copy.

       gcc -O3 -march=native -fopenmp scripts/gather_floor.c -o /tmp/gather_floor && /tmp/gather_floor
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { V = 50257, D = 768, P = 1024, N = 8192, SOURCES = 12, RUNS = 50 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    float *wte = malloc(sizeof(float) * V * D), *wpe = malloc(sizeof(float) * P * D);
    float *out = malloc(sizeof(float) * N * D), *src = malloc(sizeof(float) * SOURCES * N * D);
    int *ids = malloc(sizeof(int) * N);
    for (size_t i = 0; i < (size_t)V * D; i++) wte[i] = (float)(i % 7);
    for (size_t i = 0; i < (size_t)P * D; i++) wpe[i] = (float)(i % 5);
    for (size_t i = 0; i < (size_t)SOURCES * N * D; i++) src[i] = (float)(i % 3);
    memset(out, 0, sizeof(float) * N * D);
    srand(0);
    for (int i = 0; i < N; i++) ids[i] = rand() % V;

    const char *names[] = {"copy", "gather", "fused"};
    double median[3], t[RUNS];
    for (int mode = 0; mode < 3; mode++) {
        for (int r = 0; r < RUNS; r++) {
            const float *source = src + (size_t)(r % SOURCES) * N * D;
            double start = now();
#pragma omp parallel for
            for (int i = 0; i < N; i++) {
                float *o = out + (size_t)i * D;
                if (mode == 0) {
                    memcpy(o, source + (size_t)i * D, sizeof(float) * D);
                } else if (mode == 1) {
                    memcpy(o, wte + (size_t)ids[i] * D, sizeof(float) * D);
                } else {
                    const float *a = wte + (size_t)ids[i] * D, *b = wpe + (size_t)(i % P) * D;
                    for (int d = 0; d < D; d++) o[d] = a[d] + b[d];
                }
            }
            t[r] = now() - start;
        }
        qsort(t, RUNS, sizeof(double), by_value);
        median[mode] = t[RUNS / 2];
    }
    for (int mode = 0; mode < 3; mode++)
        printf("%-7s %7.3f ms  %5.2fx copy\n", names[mode], median[mode] * 1e3, median[mode] / median[0]);
    return 0;
}
