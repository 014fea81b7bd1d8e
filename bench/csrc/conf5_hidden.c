/* The conf5 floor, part 1 of 2 (after vectors.c; conf5_epoch.c follows it in one unit): the
 * hidden layer's two large products and Adam. The hidden kernel and its moments are taken
 * transposed, (hidden, in) row-major, so both products run along 784 contiguous floats: x W1 as
 * blocks of 2 examples x 5 units held in vector registers, and x^T dz1 as blocks of 5 units x 2
 * vectors of inputs whose sums go straight into Adam's update (that gradient never goes to
 * memory). The examples are read in place through the order, not gathered. Per-example values
 * are laid out (unit, example) so the small layer's loops (conf5_epoch.c) vectorize across the
 * batch. */
#define RB 2 /* examples per block of x W1 */
#define JB 5 /* hidden units per block of both products */
#define DB 2 /* input vectors per block of x^T dz1 */

typedef struct { float alpha, b1, b2, eps; } Adam;

INLINE vf adam_v(vf w, vf g, float *m, float *v, Adam a)
{
    const vf mv = a.b1 * load(m) + (1.0f - a.b1) * g, vv = a.b2 * load(v) + (1.0f - a.b2) * g * g;
    store(m, mv);
    store(v, vv);
    vf root = vv;
    for (int l = 0; l < VL; ++l) root[l] = sqrtf(root[l]);
    return w - a.alpha * mv / (root + a.eps);
}

static void adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, int64_t n, Adam a)
{
    for (int64_t i = 0; i < n; ++i) {
        m[i] = a.b1 * m[i] + (1.0f - a.b1) * g[i];
        v[i] = a.b2 * v[i] + (1.0f - a.b2) * g[i] * g[i];
        w[i] -= a.alpha * m[i] / (sqrtf(v[i]) + a.eps);
    }
}

/* zt[j][r] = sum_d rows[r][d] w1t[j][d] for rb examples x jb units (constants once inlined). */
INLINE void fwd_block(const float **rows, const float *w1t, int64_t d_in, int rb, int jb, float *zt, int64_t nb)
{
    vf acc[RB][JB] = {{{0}}};
    int64_t d = 0;
    for (; d + VL <= d_in; d += VL)
        for (int j = 0; j < jb; ++j) {
            const vf w = load(w1t + j * d_in + d);
            for (int r = 0; r < rb; ++r) acc[r][j] += load(rows[r] + d) * w;
        }
    for (int r = 0; r < rb; ++r)
        for (int j = 0; j < jb; ++j) {
            float s = hsum(acc[r][j]);
            for (int64_t e = d; e < d_in; ++e) s += rows[r][e] * w1t[j * d_in + e];
            zt[j * nb + r] = s;
        }
}

static void hidden_forward(const float **rows, int64_t nb, const float *w1t, int64_t d_in, int64_t hid, float *zt)
{
    int64_t j = 0;
    for (; j + JB <= hid; j += JB) {  /* a block of units stays in L1 while the examples stream by */
        int64_t r = 0;
        for (; r + RB <= nb; r += RB) fwd_block(rows + r, w1t + j * d_in, d_in, RB, JB, zt + j * nb + r, nb);
        for (; r < nb; ++r) fwd_block(rows + r, w1t + j * d_in, d_in, 1, JB, zt + j * nb + r, nb);
    }
    for (; j < hid; ++j)
        for (int64_t r = 0; r < nb; ++r) fwd_block(rows + r, w1t + j * d_in, d_in, 1, 1, zt + j * nb + r, nb);
}

/* W1t[j][d..] updated by Adam from g = sum_r dz1t[j][r] rows[r][d..], jb units x dv vectors
 * (w1t, m, v, dz1t start at the block's first unit). */
INLINE void bwd_block(const float **rows, int64_t nb, const float *dz1t, float *w1t, float *m, float *v,
                      int64_t d_in, int64_t d, int jb, int dv, Adam a, const float **next, int64_t n_next)
{
    vf acc[JB][DB] = {{{0}}};
    for (int64_t r = 0; r < nb; ++r) {
        if (next && r < n_next)  /* one line of a next example per step, spread out, not in a burst */
            for (int c = 0; c < dv * VL; c += 16) __builtin_prefetch(next[r] + d + c, 0, 2);
        vf xv[DB];
        for (int c = 0; c < dv; ++c) xv[c] = load(rows[r] + d + c * VL);
        for (int j = 0; j < jb; ++j)
            for (int c = 0; c < dv; ++c) acc[j][c] += dz1t[j * nb + r] * xv[c];
    }
    for (int j = 0; j < jb; ++j)
        for (int c = 0; c < dv; ++c) {
            const int64_t at = j * d_in + d + c * VL;
            store(w1t + at, adam_v(load(w1t + at), acc[j][c], m + at, v + at, a));
        }
}

/* Every unit's gradient and Adam update at inputs d .. d + dv * VL (dv a constant once inlined). */
INLINE void bwd_units(const float **rows, int64_t nb, const float *dz1t, float *w1t, float *m, float *v,
                      int64_t d_in, int64_t hid, int64_t d, int dv, Adam a, const float **next, int64_t n_next)
{
    int64_t j = 0;
    for (; j + JB <= hid; j += JB)
        bwd_block(rows, nb, dz1t + j * nb, w1t + j * d_in, m + j * d_in, v + j * d_in, d_in, d, JB, dv, a,
                  j ? NULL : next, n_next);
    for (; j < hid; ++j)
        bwd_block(rows, nb, dz1t + j * nb, w1t + j * d_in, m + j * d_in, v + j * d_in, d_in, d, 1, dv, a, NULL, 0);
}

/* Also prefetches the next batch's examples (`next`, n_next of them): the forward pass that
 * follows would otherwise wait on memory for each one's first lines. */
static void hidden_backward(const float **rows, int64_t nb, const float *dz1t, float *w1t, float *m, float *v,
                            int64_t d_in, int64_t hid, Adam a, const float **next, int64_t n_next)
{
    int64_t d = 0;
    for (; d + DB * VL <= d_in; d += DB * VL)  /* a cache line of each example, reused by every unit */
        bwd_units(rows, nb, dz1t, w1t, m, v, d_in, hid, d, DB, a, next, n_next);
    for (; d + VL <= d_in; d += VL)  /* a last whole vector (784 inputs in vectors of 16) */
        bwd_units(rows, nb, dz1t, w1t, m, v, d_in, hid, d, 1, a, next, n_next);
    for (; d < d_in; ++d)  /* inputs past the last whole vector, one at a time */
        for (int64_t j = 0; j < hid; ++j) {
            float g = 0.0f;
            for (int64_t r = 0; r < nb; ++r) g += dz1t[j * nb + r] * rows[r][d];
            adam(w1t + j * d_in + d, &g, m + j * d_in + d, v + j * d_in + d, 1, a);
        }
}
