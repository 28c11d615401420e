// tessel/ops/color.hpp: sRGB (D65) to CIE L*a*b*, with the constants and branch points of
// scikit-image's rgb2lab, so that SLIC (superpixel/slic.hpp) sees the same colour space as
// skimage.segmentation.slic.
//
// The per-pixel maths are TESSEL_HD functions usable in any functor; rgb_to_lab() converts a whole
// image on a backend. Inputs are sRGB values in [0, 1] (8-bit images are divided by 255); the
// gamma expansion of 8-bit values goes through a 256-entry table, the only costly step otherwise.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "tessel/backend/parallel.hpp"
#include "tessel/core/error.hpp"
#include "tessel/core/image.hpp"

namespace tessel::ops {

/// sRGB companding inverse (IEC 61966-2-1, the skimage branch point 0.04045): [0,1] -> linear.
TESSEL_HD inline double srgb_to_linear(double v) {
    return v > 0.04045 ? ::pow((v + 0.055) / 1.055, 2.4) : v / 12.92;
}

/// The CIE f(t) of the XYZ -> Lab transform, with skimage's constants (0.008856, 7.787).
TESSEL_HD inline float lab_f(float t) { return t > 0.008856f ? ::cbrtf(t) : 7.787f * t + 16.0f / 116.0f; }

/// Linear RGB -> L*a*b* (D65, 2 degree observer). Matrix and white point are skimage's
/// xyz_from_rgb and its "D65" reference white (0.95047, 1, 1.08883).
TESSEL_HD inline void linear_rgb_to_lab(float r, float g, float b, float& L, float& A, float& B) {
    // Rows of xyz_from_rgb divided by the white point, folded into one matrix.
    const float x = (0.412453f * r + 0.357580f * g + 0.180423f * b) * (1.0f / 0.95047f);
    const float y = 0.212671f * r + 0.715160f * g + 0.072169f * b;
    const float z = (0.019334f * r + 0.119193f * g + 0.950227f * b) * (1.0f / 1.08883f);
    const float fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
    L = 116.0f * fy - 16.0f;
    A = 500.0f * (fx - fy);
    B = 200.0f * (fy - fz);
}

/// sRGB in [0, 1] -> L*a*b*.
TESSEL_HD inline void srgb_to_lab(float r, float g, float b, float& L, float& A, float& B) {
    linear_rgb_to_lab(static_cast<float>(srgb_to_linear(r)), static_cast<float>(srgb_to_linear(g)),
                      static_cast<float>(srgb_to_linear(b)), L, A, B);
}

/// The 256 linear values of the 8-bit sRGB codes v / 255, for table-driven conversion.
inline std::vector<float> srgb8_linear_table() {
    std::vector<float> t(256);
    for (int v = 0; v < 256; ++v) t[static_cast<std::size_t>(v)] = static_cast<float>(srgb_to_linear(v / 255.0));
    return t;
}

namespace detail {
/// Interleaved RGB (linear when `linear`, else sRGB in [0,1]) -> interleaved Lab, one pixel per call.
struct rgb_to_lab_functor {
    const float* in;
    float* out;
    bool linear;
    TESSEL_HD void operator()(index_t i) const {
        const float* p = in + 3 * i;
        float* q = out + 3 * i;
        if (linear)
            linear_rgb_to_lab(p[0], p[1], p[2], q[0], q[1], q[2]);
        else
            srgb_to_lab(p[0], p[1], p[2], q[0], q[1], q[2]);
    }
};
}  // namespace detail

/// CIE Lab of an sRGB float image with values in [0, 1] (channel 0 is R), as skimage's rgb2lab.
/// @pre img has 3 channels and is not empty.
/// @post the result has the same size; L in [0, 100], a and b roughly in [-128, 128].
/// @code auto lab = tessel::ops::rgb_to_lab(tessel::cpu_omp{}, rgb); @endcode
template <HostBackend B = cpu_serial>
image<float> rgb_to_lab(B backend, const image<float>& img) {
    expects(!img.empty(), "tessel::ops::rgb_to_lab", "empty image");
    expects(img.channels() == 3, "tessel::ops::rgb_to_lab", "needs 3 channels (RGB), got ", img.channels());
    image<float> out(img.width(), img.height(), 3);
    parallel_for(backend, img.num_pixels(), detail::rgb_to_lab_functor{img.data(), out.data(), false});
    return out;
}

/// CIE Lab of an 8-bit sRGB image (values divided by 255, as skimage's img_as_float).
template <HostBackend B = cpu_serial>
image<float> rgb_to_lab(B backend, const image<std::uint8_t>& img) {
    expects(!img.empty(), "tessel::ops::rgb_to_lab", "empty image");
    expects(img.channels() == 3, "tessel::ops::rgb_to_lab", "needs 3 channels (RGB), got ", img.channels());
    const std::vector<float> table = srgb8_linear_table();
    image<float> lin(img.width(), img.height(), 3);
    const std::uint8_t* in = img.data();
    float* l = lin.data();
    for (index_t i = 0; i < 3 * img.num_pixels(); ++i) l[i] = table[in[i]];
    image<float> out(img.width(), img.height(), 3);
    parallel_for(backend, img.num_pixels(), detail::rgb_to_lab_functor{lin.data(), out.data(), true});
    return out;
}

}  // namespace tessel::ops
