/* The conf1 floor: one epoch of per-example SGD (tanh hidden, sigmoid output, MSE), float32,
 * examples in the order given. The hidden kernel is taken transposed, w1t (hidden, in) row-major,
 * so every pass over it runs along 784 contiguous floats. Built with -ffast-math: reductions in
 * any order, fused multiply-adds, vectorized tanhf/expf (glibc's libmvec).
 *
 * W1 is swept once per example, not twice: the sweep that applies example s's update to a row
 * also takes that updated row's dot product with example s+1, which is the next forward pass
 * (the same arithmetic as updating everything, then starting the next example). The unit starts
 * with vectors.c. */
#define RJ 5 /* rows of W1 per sweep block: each load of the two examples serves all of them */

/* Keeps a loaded vector in a register: otherwise the compiler folds its load into each of the
 * block's FMAs that use it, and the loop runs out of load slots before it runs out of stores. */
#if defined(__x86_64__)
#define IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define IN_REGISTER(v) (void)0
#endif

/* For rj rows of w1t (a constant once inlined): row_j -= g[j] x, then z[j] = row_j . xn. */
INLINE void sweep(float *w1t, const float *g, const float *x, const float *xn, int64_t d_in, int rj, float *z)
{
    vf acc[RJ] = {{0}}, gv[RJ];
    for (int j = 0; j < rj; ++j) gv[j] = (vf){0} + g[j];
    int64_t d = 0;
    for (; d + VL <= d_in; d += VL) {
        vf xv = load(x + d), nv = load(xn + d);
        IN_REGISTER(xv);
        IN_REGISTER(nv);
        for (int j = 0; j < rj; ++j) {
            const vf w = load(w1t + j * d_in + d) - gv[j] * xv;
            store(w1t + j * d_in + d, w);
            acc[j] += w * nv;
        }
    }
    for (int j = 0; j < rj; ++j) {
        float s = hsum(acc[j]);
        for (int64_t e = d; e < d_in; ++e) {  /* the inputs past the last whole vector */
            w1t[j * d_in + e] -= g[j] * x[e];
            s += w1t[j * d_in + e] * xn[e];
        }
        z[j] = s;
    }
}

static float dot(const float *restrict a, const float *restrict b, int64_t n)
{
    float s = 0.0f;
    for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
    return s;
}

/* Forward from z1 (= x W1, no bias yet) to the output; the error terms dz1, dz2 (with the
 * pre-update W2); W2, b2, b1 updated. Returns the example's squared error; *hit if argmax == label. */
static double step_head(float *restrict z1, float *restrict b1, float *restrict w2, float *restrict b2,
                        int64_t label, int64_t hid, int64_t k_out, float lr, float *restrict dz1, int64_t *hit)
{
    float h[hid], p[k_out], dz2[k_out];
    for (int64_t j = 0; j < hid; ++j) h[j] = tanhf(z1[j] + b1[j]);
    for (int64_t k = 0; k < k_out; ++k) p[k] = b2[k];
    for (int64_t j = 0; j < hid; ++j)
        for (int64_t k = 0; k < k_out; ++k) p[k] += h[j] * w2[j * k_out + k];
    for (int64_t k = 0; k < k_out; ++k) p[k] = 1.0f / (1.0f + expf(-p[k]));
    int64_t best = 0;
    for (int64_t k = 1; k < k_out; ++k)
        if (p[k] > p[best]) best = k;
    *hit = best == label;
    float loss = 0.0f;
    for (int64_t k = 0; k < k_out; ++k) {               /* MSE through the sigmoid */
        const float diff = p[k] - (k == label ? 1.0f : 0.0f);
        loss += diff * diff;
        dz2[k] = (2.0f / (float)k_out) * diff * p[k] * (1.0f - p[k]);
    }
    for (int64_t j = 0; j < hid; ++j) {                 /* dz1 with the pre-update W2 */
        float dh = 0.0f;
        for (int64_t k = 0; k < k_out; ++k) dh += w2[j * k_out + k] * dz2[k];
        dz1[j] = lr * dh * (1.0f - h[j] * h[j]);         /* lr folded in: the W1 step's scale */
        b1[j] -= dz1[j];
    }
    for (int64_t j = 0; j < hid; ++j)
        for (int64_t k = 0; k < k_out; ++k) w2[j * k_out + k] -= lr * h[j] * dz2[k];
    for (int64_t k = 0; k < k_out; ++k) b2[k] -= lr * dz2[k];
    return (double)(loss / (float)k_out);
}

void conf1_epoch(float *restrict w1t, float *restrict b1, float *restrict w2, float *restrict b2,
                 const float *restrict x, const int64_t *restrict y, const int64_t *restrict order,
                 int64_t n, int64_t d_in, int64_t hid, int64_t k_out, float lr,
                 double *restrict loss_sum, int64_t *restrict correct)
{
    float z1[hid], g[hid];
    double loss = 0.0;
    int64_t right = 0, hit;
    if (n > 0)
        for (int64_t j = 0; j < hid; ++j) z1[j] = dot(w1t + j * d_in, x + order[0] * d_in, d_in);
    for (int64_t s = 0; s < n; ++s) {
        const float *xi = x + order[s] * d_in;
        const float *xn = x + order[s + 1 < n ? s + 1 : s] * d_in;  /* the last sweep's dots go unused */
        loss += step_head(z1, b1, w2, b2, y[order[s]], hid, k_out, lr, g, &hit);
        right += hit;
        int64_t j = 0;
        for (; j + RJ <= hid; j += RJ)                  /* W1 -= lr x^T dz1, and the next z1 */
            sweep(w1t + j * d_in, g + j, xi, xn, d_in, RJ, z1 + j);
        for (; j < hid; ++j) sweep(w1t + j * d_in, g + j, xi, xn, d_in, 1, z1 + j);
    }
    *loss_sum = loss;
    *correct = right;
}
