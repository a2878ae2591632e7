/* The EA-LSTM's training loops through time on the CPU, float32, one thread.
 *
 * Compiled on first use by xsomo.model._ckernel (cc -O3 -march=native) with the
 * hidden size HD and the number of dynamic inputs DD as compile-time constants, so that a
 * row's gate accumulators stay in vector registers; called through ctypes by
 * xsomo.model._ealstm_cpu.EALSTMFunction, which does the same arithmetic with one PyTorch
 * operation per step and day where no compiler is at hand. Per step the Python loop pays
 * the dispatcher about ten times; at 32 hidden units and 64 sequences that cost is larger
 * than the arithmetic.
 *
 * Layouts (row-major, contiguous; N sequences, T days, K = HD + DD, G = 3 HD, gates f, o, g):
 *   hx     (T + 1, N, K)  hx[t] = [h_{t-1}, x_t]; hx[0, :, :HD] = h0 and the x parts are
 *                         filled by the caller; the forward pass writes h_t into hx[t + 1]
 *   W      (K, G)         [h, x] -> f, o, g pre-activations, the g columns times 2
 *   b      (G)            bias, the g entries times 2
 *   gi     (N, HD)        the input gate (from the statics, constant in time)
 *   gates  (T, N, G)      f, o after the sigmoid and g after the tanh
 *   cs     (T + 1, N, HD) c_{t-1} at t; cs[0] = c0 from the caller
 *   out    (N, T - T0, HD) h_t for t >= T0, batch first: the layer's output from day T0 on
 *                         (the days before are not written and get no gradient)
 * tanh(x) = 2 sigmoid(2x) - 1 throughout, as in the Python loop.
 */
#include <math.h>
#include <stddef.h>

#ifndef HD
#error "compile with -DHD=<hidden units>"
#endif
#ifndef DD
#error "compile with -DDD=<dynamic inputs>"
#endif
#define KK (HD + DD)
#define GG (3 * HD)

/* glibc's vector expf (libmvec; 16 or 8 lanes at a time), declared here as math.h declares it
 * only under -ffast-math. The kernel is compiled without -ffast-math (xsomo.model._ckernel):
 * that would assume no NaN and no infinity, and a NaN input must give a NaN loss, not a
 * saturated gate (large pre-activations gave NaN under it, too). */
#pragma omp declare simd notinbranch
extern float expf(float);

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Register blocks: JB columns are three vectors (16 floats in a 512-bit register: compiled with
 * -mprefer-vector-width=512, GCC's default for Intel's AVX-512 cores being 256), RB rows of x
 * (KB rows of A in wgrad_block) share each load of W (of B): 4 x 3 = 12 accumulators, of the
 * 16 vector registers of AVX2 or the 32 of AVX-512. The sums run in the same order for any
 * block: the results are the same to the bit (checked); only the time differs. Measured on a
 * 2-core Intel Xeon (AVX-512, 2026-12-03), forward + backward, one thread: 64 x 730 days x 32
 * units 31-34 -> 22-23 ms, 256 x 730 x 128 units 1.41-1.46 -> 1.04 s against RB = KB = 2, JB = 96
 * with 256-bit vectors, and 0.91 s with the backward's dh in blocks of DR rows (dh_block); built
 * for AVX2 (x86-64-v3) on the same CPU 39-41 -> 30-33 ms and 1.78 -> 1.40 -> 1.33 s. */
#if defined(__AVX512F__)
#define VEC 16
#elif defined(__AVX__)
#define VEC 8
#else
#define VEC 4
#endif
#ifndef JB
#define JB (3 * VEC)
#endif
#ifndef RB
#define RB 4
#endif
/* out[q][j0 + j] = b[j0 + j] + sum_k x[q][k] W[k][j0 + j] for rows q < RB and a block of JB
 * columns: RB x JB accumulators, each row an independent chain. */
static inline void gates_block(const float *restrict x, int rows, const float *restrict W, const float *restrict b,
                               float *restrict out, int j0, int jn) {
    if (rows == RB && jn == JB) {
        float acc[RB][JB];
        for (int q = 0; q < RB; q++)
            for (int j = 0; j < JB; j++) acc[q][j] = b[j0 + j];
        for (int k = 0; k < KK; k++) {
            const float *w = W + (size_t)k * GG + j0;
            for (int q = 0; q < RB; q++) {
                float xv = x[(size_t)q * KK + k];
                for (int j = 0; j < JB; j++) acc[q][j] += xv * w[j];
            }
        }
        for (int q = 0; q < RB; q++)
            for (int j = 0; j < JB; j++) out[(size_t)q * GG + j0 + j] = acc[q][j];
        return;
    }
    for (int q = 0; q < rows; q++) {
        float *o = out + (size_t)q * GG + j0;
        for (int j = 0; j < jn; j++) o[j] = b[j0 + j];
        for (int k = 0; k < KK; k++) {
            float xv = x[(size_t)q * KK + k];
            const float *w = W + (size_t)k * GG + j0;
            for (int j = 0; j < jn; j++) o[j] += xv * w[j];
        }
    }
}

void ealstm_forward(int T, int T0, int N, float *restrict hx, const float *restrict W, const float *restrict b,
                    const float *restrict gi, float *restrict gates, float *restrict cs, float *restrict out) {
    for (int t = 0; t < T; t++) {
        for (int r0 = 0; r0 < N; r0 += RB) {
            int rows = N - r0 < RB ? N - r0 : RB;
            const float *x = hx + ((size_t)t * N + r0) * KK;
            float *gt0 = gates + ((size_t)t * N + r0) * GG;
            for (int j0 = 0; j0 < GG; j0 += JB) gates_block(x, rows, W, b, gt0, j0, GG - j0 < JB ? GG - j0 : JB);
            for (int r = r0; r < r0 + rows; r++) {
                float *gt = gates + ((size_t)t * N + r) * GG;
                for (int j = 0; j < GG; j++) gt[j] = sigm(gt[j]);
                const float *cp = cs + ((size_t)t * N + r) * HD;
                float *cn = cs + ((size_t)(t + 1) * N + r) * HD;
                float *hn = hx + ((size_t)(t + 1) * N + r) * KK;
                const float *g_i = gi + (size_t)r * HD;
                for (int j = 0; j < HD; j++) {
                    float g = 2.0f * gt[2 * HD + j] - 1.0f;
                    gt[2 * HD + j] = g;
                    float c = gt[j] * cp[j] + g_i[j] * g;
                    cn[j] = c;
                    float tcv = 2.0f * sigm(2.0f * c) - 1.0f;
                    hn[j] = gt[HD + j] * tcv;
                }
                if (t >= T0) {
                    float *o_r = out + ((size_t)r * (T - T0) + (t - T0)) * HD;
                    for (int j = 0; j < HD; j++) o_r[j] = hn[j];
                }
            }
        }
    }
}

/* The dropout's keep factors from 15-bit random integers (xsomo.model.ealstm.Dropout): keep[i] is
 * scale where (bits[i] & 0x7FFF) >= drop, else 0; one pass instead of four PyTorch operations. */
void dropout_keep(long n, const short *restrict bits, int drop, float scale, float *restrict keep) {
    for (long i = 0; i < n; i++) keep[i] = (bits[i] & 0x7FFF) >= drop ? scale : 0.0f;
}

/* P[k0 + q][j0 + j] = sum_r A[r][k0 + q] B[r][j0 + j] for q < kn and j < jn: KB x JB accumulators
 * where the block is whole, each an independent chain. */
#ifndef KB
#define KB 4
#endif
static inline void wgrad_block(int N, const float *restrict A, const float *restrict B, float *restrict P, int k0,
                               int kn, int j0, int jn) {
    if (kn == KB && jn == JB) {
        float acc[KB][JB];
        for (int q = 0; q < KB; q++)
            for (int j = 0; j < JB; j++) acc[q][j] = 0.0f;
        for (int r = 0; r < N; r++) {
            const float *b = B + (size_t)r * GG + j0;
            for (int q = 0; q < KB; q++) {
                float av = A[(size_t)r * KK + k0 + q];
                for (int j = 0; j < JB; j++) acc[q][j] += av * b[j];
            }
        }
        for (int q = 0; q < KB; q++)
            for (int j = 0; j < JB; j++) P[(size_t)(k0 + q) * GG + j0 + j] = acc[q][j];
        return;
    }
    for (int q = 0; q < kn; q++) {
        float *p = P + (size_t)(k0 + q) * GG + j0;
        for (int j = 0; j < jn; j++) p[j] = 0.0f;
        for (int r = 0; r < N; r++) {
            float av = A[(size_t)r * KK + k0 + q];
            const float *b = B + (size_t)r * GG + j0;
            for (int j = 0; j < jn; j++) p[j] += av * b[j];
        }
    }
}

/* P = A^T B for A (N, KK) and B (N, GG), row-major: a day's rank-N update of the weight gradient. */
static void rank_update(int N, const float *restrict A, const float *restrict B, float *restrict P) {
    for (int k0 = 0; k0 < KK; k0 += KB)
        for (int j0 = 0; j0 < GG; j0 += JB)
            wgrad_block(N, A, B, P, k0, KK - k0 < KB ? KK - k0 : KB, j0, GG - j0 < JB ? GG - j0 : JB);
}

/* dh[q][j0 + j] = sum_m dp[q][m] wh[m][j0 + j] for rows q < rows and a block of jn <= DJ columns, in
 * four chains (m = 0, 1, 2, 3 mod 4, the rest into the first) added as (0 + 1) + (2 + 3): the order
 * of the one-row loop this replaces, so the same bits; DR rows share each load of wh. */
#ifndef DJ
#define DJ (2 * VEC)
#endif
#ifndef DR
#define DR 4
#endif
static inline void dh_block(const float *restrict dp, int rows, const float *restrict wh, float *restrict dh, int j0,
                            int jn) {
    if (rows == DR && jn == DJ) {
        float acc[DR][4][DJ];
        for (int q = 0; q < DR; q++)
            for (int c = 0; c < 4; c++)
                for (int j = 0; j < DJ; j++) acc[q][c][j] = 0.0f;
        for (int m = 0; m + 3 < GG; m += 4)
            for (int c = 0; c < 4; c++) {
                const float *w = wh + (size_t)(m + c) * HD + j0;
                for (int q = 0; q < DR; q++) {
                    float v = dp[(size_t)q * GG + m + c];
                    for (int j = 0; j < DJ; j++) acc[q][c][j] += v * w[j];
                }
            }
        for (int m = GG - GG % 4; m < GG; m++) {
            const float *w = wh + (size_t)m * HD + j0;
            for (int q = 0; q < DR; q++) {
                float v = dp[(size_t)q * GG + m];
                for (int j = 0; j < DJ; j++) acc[q][0][j] += v * w[j];
            }
        }
        for (int q = 0; q < DR; q++)
            for (int j = 0; j < DJ; j++)
                dh[(size_t)q * HD + j0 + j] = (acc[q][0][j] + acc[q][1][j]) + (acc[q][2][j] + acc[q][3][j]);
        return;
    }
    for (int q = 0; q < rows; q++) {
        float acc[4][DJ];
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < jn; j++) acc[c][j] = 0.0f;
        for (int m = 0; m + 3 < GG; m += 4)
            for (int c = 0; c < 4; c++) {
                float v = dp[(size_t)q * GG + m + c];
                const float *w = wh + (size_t)(m + c) * HD + j0;
                for (int j = 0; j < jn; j++) acc[c][j] += v * w[j];
            }
        for (int m = GG - GG % 4; m < GG; m++) {
            float v = dp[(size_t)q * GG + m];
            const float *w = wh + (size_t)m * HD + j0;
            for (int j = 0; j < jn; j++) acc[0][j] += v * w[j];
        }
        for (int j = 0; j < jn; j++) dh[(size_t)q * HD + j0 + j] = (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]);
    }
}

/* Backward through time. gseq (N, T - T0, HD) is d loss / d h_t for t >= T0 (NULL: none); dh, dc (N, HD) hold
 * d loss / d h_T, c_T on entry and d loss / d h0, c0 on return; di (N, HD) accumulates
 * d loss / d input gate. The pre-activations' gradients (unscaled: wh is the recurrent weight
 * (G, HD) without the factor 2 of W) of each day go to dday (N, G), or to dpre (T, N, G) where
 * the caller needs them all (the inputs' gradient; else NULL), and right away into the weight
 * gradient: dw (K, G) += hx[t]^T dpre[t] and db (G) += the column sums, accumulated in double
 * over the days (part (K, G) holds a day's float32 sum). While they are in cache: the one
 * GEMM over all days afterwards cost more than the loops' own arithmetic at 32 units. */
void ealstm_backward(int T, int T0, int N, const float *restrict gseq, const float *restrict gates,
                     const float *restrict cs, const float *restrict gi,
                     const float *restrict wh, float *restrict dh, float *restrict dc, float *restrict di,
                     float *restrict dpre, const float *restrict hx, float *restrict dday, float *restrict part,
                     double *restrict dw, double *restrict db) {
    for (int t = T - 1; t >= 0; t--) {
        float *dpt = dpre ? dpre + (size_t)t * N * GG : dday;
        for (int r = 0; r < N; r++) {
            float *dhr = dh + (size_t)r * HD, *dcr = dc + (size_t)r * HD, *dir = di + (size_t)r * HD;
            const float *gt = gates + ((size_t)t * N + r) * GG;
            const float *cn = cs + ((size_t)(t + 1) * N + r) * HD; /* c_t: tanh(c_t) again, not stored */
            const float *cp = cs + ((size_t)t * N + r) * HD;
            const float *g_i = gi + (size_t)r * HD;
            float *dp = dpt + (size_t)r * GG;
            if (gseq && t >= T0) {
                const float *gs = gseq + ((size_t)r * (T - T0) + (t - T0)) * HD;
                for (int j = 0; j < HD; j++) dhr[j] += gs[j];
            }
            for (int j = 0; j < HD; j++) {
                float f = gt[j], o = gt[HD + j], g = gt[2 * HD + j], tcv = 2.0f * sigm(2.0f * cn[j]) - 1.0f, h = dhr[j];
                dp[HD + j] = h * tcv * o * (1.0f - o);         /* output gate */
                float c = dcr[j] + h * o * (1.0f - tcv * tcv); /* cell state */
                dir[j] += c * g;                               /* input gate */
                dp[2 * HD + j] = c * g_i[j] * (1.0f - g * g);  /* cell gate */
                dp[j] = c * cp[j] * f * (1.0f - f);            /* forget gate */
                dcr[j] = c * f;
            }
        }
        /* dh = dp @ wh for every row, in blocks of rows and columns (see dh_block) */
        for (int r0 = 0; r0 < N; r0 += DR)
            for (int j0 = 0; j0 < HD; j0 += DJ)
                dh_block(dpt + (size_t)r0 * GG, N - r0 < DR ? N - r0 : DR, wh, dh + (size_t)r0 * HD, j0,
                         HD - j0 < DJ ? HD - j0 : DJ);
        rank_update(N, hx + (size_t)t * N * KK, dpt, part);
        for (int m = 0; m < KK * GG; m++) dw[m] += part[m];
        for (int r = 0; r < N; r++)
            for (int j = 0; j < GG; j++) db[j] += dpt[(size_t)r * GG + j];
    }
}
