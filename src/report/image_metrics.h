// Image quality metrics for judging a KV policy against the full cache (spec: "How to judge a policy").
#pragma once
#include <cstdint>

namespace amskv::report {

// Peak signal-to-noise ratio in dB over n values: 10 * log10(peak^2 / MSE), MSE = mean((a - b)^2),
// accumulated in double. Identical inputs (MSE == 0) give +infinity
// (std::numeric_limits<double>::infinity()); a NaN anywhere gives NaN. Throws amskv::Error when n <= 0 or
// peak <= 0.
double psnr(const float* a, const float* b, int64_t n, double peak = 1.0);

// Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004), as in the authors' reference
// implementation ssim_index.m, without any downsampling:
//  - a and b are [channels, height, width] row-major planes with values in [0, 1] (data range L = 1);
//  - window: 11x11 Gaussian, sigma 1.5, normalised to sum 1;
//  - local statistics at every position where the window lies wholly inside the image ("valid" region,
//    (height - 10) x (width - 10) positions): mu = sum w x, sigma_x^2 = sum w x^2 - mu_x^2,
//    sigma_xy = sum w x y - mu_x mu_y (weighted, no N/(N-1) correction);
//  - map = ((2 mu_x mu_y + C1)(2 sigma_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
//    C1 = (0.01 L)^2, C2 = (0.03 L)^2;
//  - the mean of the map per channel, then the mean over channels.
// This equals scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
// use_sample_covariance=False, data_range=1, channel_axis=0). Symmetric in a and b; 1 for identical
// images. Throws amskv::Error when height or width < 11 or channels < 1.
double ssim(const float* a, const float* b, int64_t channels, int64_t height, int64_t width);

}  // namespace amskv::report
