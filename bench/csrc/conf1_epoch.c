/* The conf1 floor: one epoch of per-example SGD (tanh hidden, sigmoid output, MSE), float32,
 * examples in the order given. The hidden kernel is taken transposed, w1t (hidden, in) row-major,
 * so both of its passes per example (the dot products of the forward pass, the rank-1 update of
 * the backward pass) run over 784 contiguous floats; the dot products keep LANES partial sums,
 * a fixed order the compiler vectorizes without reassociating anything. The only liberty taken
 * with the arithmetic is fused multiply-add (-ffp-contract=fast); bench/measure.py's gate checks
 * the result against the float64 reference before timing. */
#include <math.h>
#include <stdint.h>

#define LANES 16

static float dot(const float *restrict a, const float *restrict b, int64_t n)
{
    float acc[LANES] = {0};
    int64_t d = 0;
    for (; d + LANES <= n; d += LANES)
        for (int l = 0; l < LANES; ++l) acc[l] += a[d + l] * b[d + l];
    float s = 0.0f;
    for (; d < n; ++d) s += a[d] * b[d];
    for (int l = 0; l < LANES; ++l) s += acc[l];
    return s;
}

void conf1_epoch(float *restrict w1t, float *restrict b1, float *restrict w2, float *restrict b2,
                 const float *restrict x, const int64_t *restrict y, const int64_t *restrict order,
                 int64_t n, int64_t d_in, int64_t hid, int64_t k_out, float lr,
                 double *restrict loss_sum, int64_t *restrict correct)
{
    float h[hid], dz1[hid], p[k_out], dz2[k_out];
    const float two_over_k = 2.0f / (float)k_out;
    double loss = 0.0;
    int64_t right = 0;
    for (int64_t s = 0; s < n; ++s) {
        const int64_t i = order[s];
        const float *restrict xi = x + i * d_in;
        for (int64_t j = 0; j < hid; ++j)               /* h = tanh(x W1 + b1) */
            h[j] = tanhf(dot(w1t + j * d_in, xi, d_in) + b1[j]);
        int64_t best = 0;
        for (int64_t k = 0; k < k_out; ++k) {          /* z2 = h W2 + b2, p = sigmoid(z2) */
            float acc = b2[k];
            for (int64_t j = 0; j < hid; ++j) acc += h[j] * w2[j * k_out + k];
            p[k] = 1.0f / (1.0f + expf(-acc));
            if (p[k] > p[best]) best = k;
        }
        right += best == y[i];
        for (int64_t k = 0; k < k_out; ++k) {          /* MSE through the sigmoid */
            const float diff = p[k] - (k == y[i] ? 1.0f : 0.0f);
            loss += (double)(diff * diff / (float)k_out);
            dz2[k] = two_over_k * diff * p[k] * (1.0f - p[k]);
        }
        for (int64_t j = 0; j < hid; ++j) {            /* dz1 with the pre-update W2 */
            float dh = 0.0f;
            for (int64_t k = 0; k < k_out; ++k) dh += w2[j * k_out + k] * dz2[k];
            dz1[j] = dh * (1.0f - h[j] * h[j]);
        }
        for (int64_t j = 0; j < hid; ++j)
            for (int64_t k = 0; k < k_out; ++k) w2[j * k_out + k] -= lr * h[j] * dz2[k];
        for (int64_t k = 0; k < k_out; ++k) b2[k] -= lr * dz2[k];
        for (int64_t j = 0; j < hid; ++j) {            /* W1 -= lr x^T dz1, row by row */
            const float g = lr * dz1[j];
            float *restrict row = w1t + j * d_in;
            for (int64_t d = 0; d < d_in; ++d) row[d] -= g * xi[d];
            b1[j] -= g;
        }
    }
    *loss_sum = loss;
    *correct = right;
}
