/* The conf5 floor, part 2 of 2 (after conf5_hidden.c): one epoch of mini-batch Adam (Keras's
 * epsilon convention) on a ReLU hidden layer and a softmax output with categorical cross-entropy
 * on the logits, float32, examples in the order given. Built with -ffast-math (reductions in any
 * order, libmvec's expf/logf). Per-example values are (unit, example) arrays, the example index
 * innermost, so the loops below vectorize across the batch. */

typedef struct {
    float *at, *dz1t, *z2t, *g2, *gb1, *gb2, *mx, *tot, *zl;
    int32_t *arg;
    int64_t *label;
    const float **rows;
} Work;

/* Logits z2t, then softmax + cross-entropy: dz2t (over z2t) = (softmax - one-hot) / nb.
 * Returns the batch's loss sum; adds its correct predictions to *right. */
static double head(Work *w, int64_t nb, const float *w2, const float *b2, int64_t hid, int64_t k_out, int64_t *right)
{
    float *z = w->z2t;
    for (int64_t k = 0; k < k_out; ++k)
        for (int64_t r = 0; r < nb; ++r) z[k * nb + r] = b2[k];
    for (int64_t j = 0; j < hid; ++j)
        for (int64_t k = 0; k < k_out; ++k)
            for (int64_t r = 0; r < nb; ++r) z[k * nb + r] += w2[j * k_out + k] * w->at[j * nb + r];
    for (int64_t r = 0; r < nb; ++r) w->mx[r] = z[r], w->arg[r] = 0, w->tot[r] = 0.0f;
    for (int64_t k = 1; k < k_out; ++k)
        for (int64_t r = 0; r < nb; ++r)
            if (z[k * nb + r] > w->mx[r]) w->mx[r] = z[k * nb + r], w->arg[r] = (int32_t)k;
    double loss = 0.0;
    for (int64_t r = 0; r < nb; ++r) {
        *right += w->arg[r] == w->label[r];
        w->zl[r] = z[w->label[r] * nb + r] - w->mx[r];
    }
    for (int64_t k = 0; k < k_out; ++k)
        for (int64_t r = 0; r < nb; ++r) {
            z[k * nb + r] = expf(z[k * nb + r] - w->mx[r]);
            w->tot[r] += z[k * nb + r];
        }
    for (int64_t r = 0; r < nb; ++r) {
        loss += (double)(logf(w->tot[r]) - w->zl[r]);
        w->tot[r] = 1.0f / (w->tot[r] * (float)nb);
    }
    for (int64_t k = 0; k < k_out; ++k)
        for (int64_t r = 0; r < nb; ++r)
            z[k * nb + r] = z[k * nb + r] * w->tot[r] - (w->label[r] == k ? 1.0f / (float)nb : 0.0f);
    return loss;
}

/* dz1t (ReLU's mask, the pre-update W2) and the small gradients g2 = a^T dz2, gb1, gb2. */
static void backprop_small(Work *w, int64_t nb, const float *w2, int64_t hid, int64_t k_out)
{
    for (int64_t j = 0; j < hid; ++j) {
        float *dz = w->dz1t + j * nb, *a = w->at + j * nb;
        for (int64_t r = 0; r < nb; ++r) dz[r] = 0.0f;
        for (int64_t k = 0; k < k_out; ++k)
            for (int64_t r = 0; r < nb; ++r) dz[r] += w2[j * k_out + k] * w->z2t[k * nb + r];
        float sum = 0.0f;
        for (int64_t r = 0; r < nb; ++r) sum += dz[r] = a[r] > 0.0f ? dz[r] : 0.0f;
        w->gb1[j] = sum;
        for (int64_t k = 0; k < k_out; ++k) {
            float g = 0.0f;
            for (int64_t r = 0; r < nb; ++r) g += a[r] * w->z2t[k * nb + r];
            w->g2[j * k_out + k] = g;
        }
    }
    for (int64_t k = 0; k < k_out; ++k) {
        float g = 0.0f;
        for (int64_t r = 0; r < nb; ++r) g += w->z2t[k * nb + r];
        w->gb2[k] = g;
    }
}

/* moments: m then v, each [w1t | b1 | w2 | b2] flattened; step: updates so far (Adam's t). */
void conf5_epoch(float *restrict w1t, float *restrict b1, float *restrict w2, float *restrict b2,
                 float *restrict moments, int64_t *restrict step, const float *restrict x,
                 const int64_t *restrict y, const int64_t *restrict order, int64_t n, int64_t batch,
                 int64_t d_in, int64_t hid, int64_t k_out, double lr, double beta_1, double beta_2, float eps,
                 double *restrict loss_sum, int64_t *restrict correct)
{
    const int64_t o_b1 = hid * d_in, o_w2 = o_b1 + hid, o_b2 = o_w2 + hid * k_out, total = o_b2 + k_out;
    float *m = moments, *v = moments + total;
    float *buf = malloc(sizeof(float) * (size_t)(batch * (2 * hid + k_out + 3) + hid * k_out + hid + k_out));
    Work w = {.at = buf, .dz1t = buf + batch * hid, .z2t = buf + 2 * batch * hid};
    w.mx = w.z2t + batch * k_out, w.tot = w.mx + batch, w.zl = w.tot + batch;
    w.g2 = w.zl + batch, w.gb1 = w.g2 + hid * k_out, w.gb2 = w.gb1 + hid;
    w.arg = malloc(sizeof(int32_t) * (size_t)batch);
    w.label = malloc(sizeof(int64_t) * (size_t)batch);
    w.rows = malloc(sizeof(float *) * (size_t)(2 * batch));  /* this batch's examples, then the next's */
    double loss = 0.0;
    int64_t right = 0;
    for (int64_t start = 0; start < n; start += batch) {
        const int64_t nb = n - start < batch ? n - start : batch;
        const int64_t n_next = n - start - nb < batch ? n - start - nb : batch;
        for (int64_t r = 0; r < nb; ++r)
            w.rows[r] = x + order[start + r] * d_in, w.label[r] = y[order[start + r]];
        for (int64_t r = 0; r < n_next; ++r) w.rows[batch + r] = x + order[start + nb + r] * d_in;
        hidden_forward(w.rows, nb, w1t, d_in, hid, w.at);
        for (int64_t j = 0; j < hid; ++j)
            for (int64_t r = 0; r < nb; ++r) w.at[j * nb + r] = fmaxf(w.at[j * nb + r] + b1[j], 0.0f);
        loss += head(&w, nb, w2, b2, hid, k_out, &right);
        backprop_small(&w, nb, w2, hid, k_out);
        const int64_t t = ++*step;
        const Adam a = {(float)(lr * sqrt(1.0 - pow(beta_2, (double)t)) / (1.0 - pow(beta_1, (double)t))),
                        (float)beta_1, (float)beta_2, eps};
        adam(b1, w.gb1, m + o_b1, v + o_b1, hid, a);
        adam(w2, w.g2, m + o_w2, v + o_w2, hid * k_out, a);
        adam(b2, w.gb2, m + o_b2, v + o_b2, k_out, a);
        hidden_backward(w.rows, nb, w.dz1t, w1t, m, v, d_in, hid, a, w.rows + batch, n_next);
    }
    free(buf), free(w.arg), free(w.label), free(w.rows);
    *loss_sum = loss;
    *correct = right;
}
