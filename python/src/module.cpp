// tessel._native: the compiled core of the tessel Python package (python/tessel/ wraps it with
// scikit-image style signatures and the input checks). This unit holds the module definition,
// the classical over-segmentations, the metrics and the image reader; segment.cpp the presets.
#include <omp.h>

#include <filesystem>
#include <optional>

#include <tessel/io/image.hpp>
#include <tessel/metrics/aggregate.hpp>
#include <tessel/metrics/boundary_displacement.hpp>
#include <tessel/metrics/covering.hpp>
#include <tessel/metrics/matched_iou.hpp>
#include <tessel/metrics/rand_index.hpp>
#include <tessel/metrics/variation_of_information.hpp>
#include <tessel/superpixel/felzenszwalb.hpp>
#include <tessel/superpixel/slic.hpp>
#include <tessel/version.hpp>

#include "common.hpp"

namespace tessel::python {
namespace {

namespace mt = tessel::metrics;

using labels_in = py::array_t<label_t, py::array::c_style | py::array::forcecast>;

template <class Spec, class T>
label_map run_spec(const Spec& spec, const std::string& backend, const image<T>& img) {
    if (backend == "cpu_serial") return spec(cpu_serial{}, img);
    return spec(cpu_omp{}, img);
}

/// Runs an over-segmentation spec (slic, felzenszwalb) on a numpy image without the GIL.
template <class Spec, class T>
py::array_t<label_t> segment_on(const py::array_t<T, py::array::c_style>& pixels, const typename Spec::config& cfg,
                                const std::string& backend, int threads) {
    Spec spec{cfg};
    Spec::validate(spec.cfg);
    label_map out;
    {
        py::gil_scoped_release nogil;
        threads_for_call scope(threads);
        out = run_spec(spec, backend, to_image(pixels));
    }
    return to_array(std::move(out));
}

std::vector<label_map> to_label_maps(const std::vector<labels_in>& arrays) {
    std::vector<label_map> out;
    out.reserve(arrays.size());
    for (const auto& a : arrays) out.push_back(to_label_map(a));
    return out;
}

/// SLIC with skimage's mask= (an H x W int32 array, non-zero inside) when one is given.
template <class T>
py::array_t<label_t> slic_on(const py::array_t<T, py::array::c_style>& pixels, const slic::config& cfg,
                             const std::optional<labels_in>& mask, const std::string& backend, int threads) {
    if (!mask) return segment_on<slic>(pixels, cfg, backend, threads);
    slic::validate(cfg);
    const label_map inside = to_label_map(*mask);
    label_map out;
    {
        py::gil_scoped_release nogil;
        threads_for_call scope(threads);
        const image<T> img = to_image(pixels);
        out = backend == "cpu_serial" ? slic{cfg}(cpu_serial{}, img, inside) : slic{cfg}(cpu_omp{}, img, inside);
    }
    return to_array(std::move(out));
}

void bind_slic_felzenszwalb(py::module_& m) {
    auto slic_cfg = [](index_t n_segments, float compactness, int max_num_iter, double sigma, bool enforce_connectivity,
                       double min_size_factor, double max_size_factor, bool slic_zero, label_t start_label,
                       bool convert2lab, double spacing_y, double spacing_x, index_t mask_samples_per_seed) {
        slic::config c;
        c.n_segments = n_segments;
        c.compactness = compactness;
        c.max_iter = max_num_iter;
        c.sigma = sigma;
        c.enforce_connectivity = enforce_connectivity;
        c.min_size_factor = min_size_factor;
        c.max_size_factor = max_size_factor;
        c.slic_zero = slic_zero;
        c.start_label = start_label;
        c.convert2lab = convert2lab;
        c.spacing_y = spacing_y;
        c.spacing_x = spacing_x;
        c.mask_samples_per_seed = mask_samples_per_seed;
        return c;
    };
    m.def("slic_u8", [=](const py::array_t<std::uint8_t, py::array::c_style>& px, index_t n, float comp, int it,
                         double sigma, bool ec, double mn, double mx, bool zero, label_t start, bool lab, double sy,
                         double sx, const std::optional<labels_in>& mask, index_t per_seed, const std::string& backend,
                         int threads) {
        return slic_on(px, slic_cfg(n, comp, it, sigma, ec, mn, mx, zero, start, lab, sy, sx, per_seed), mask, backend,
                       threads);
    });
    m.def("slic_f32", [=](const py::array_t<float, py::array::c_style>& px, index_t n, float comp, int it, double sigma,
                          bool ec, double mn, double mx, bool zero, label_t start, bool lab, double sy, double sx,
                          const std::optional<labels_in>& mask, index_t per_seed, const std::string& backend,
                          int threads) {
        return slic_on(px, slic_cfg(n, comp, it, sigma, ec, mn, mx, zero, start, lab, sy, sx, per_seed), mask, backend,
                       threads);
    });
    m.def("felzenszwalb_u8", [](const py::array_t<std::uint8_t, py::array::c_style>& px, double scale, double sigma,
                                index_t min_size, const std::string& backend, int threads) {
        return segment_on<felzenszwalb>(px, felzenszwalb::config{scale, sigma, min_size}, backend, threads);
    });
    m.def("felzenszwalb_f32", [](const py::array_t<float, py::array::c_style>& px, double scale, double sigma,
                                 index_t min_size, const std::string& backend, int threads) {
        return segment_on<felzenszwalb>(px, felzenszwalb::config{scale, sigma, min_size}, backend, threads);
    });
}

void bind_metric_functions(py::module_& m) {
    m.def("probabilistic_rand_index", [](const labels_in& seg, const std::vector<labels_in>& gts) {
        const label_map s = to_label_map(seg);
        const auto g = to_label_maps(gts);
        py::gil_scoped_release nogil;
        return mt::probabilistic_rand_index(s, std::span<const label_map>(g), cpu_omp{});
    });
    m.def("variation_of_information", [](const labels_in& seg, const labels_in& gt, double base) {
        const label_map s = to_label_map(seg), g = to_label_map(gt);
        mt::voi_result r;
        {
            py::gil_scoped_release nogil;
            r = mt::variation_of_information(s, g, base, cpu_omp{});
        }
        return py::make_tuple(r.vi, r.h_seg_given_gt, r.h_gt_given_seg);
    });
    m.def("mean_variation_of_information", [](const labels_in& seg, const std::vector<labels_in>& gts, double base) {
        const label_map s = to_label_map(seg);
        const auto g = to_label_maps(gts);
        py::gil_scoped_release nogil;
        return mt::mean_variation_of_information(s, std::span<const label_map>(g), base, cpu_omp{});
    });
    m.def("covering", [](const labels_in& seg, const labels_in& gt, bool gt_by_seg) {
        const label_map s = to_label_map(seg), g = to_label_map(gt);
        py::gil_scoped_release nogil;
        return mt::covering(s, g, gt_by_seg ? mt::covering_direction::gt_by_seg : mt::covering_direction::seg_by_gt,
                            cpu_omp{});
    });
    m.def("bsr_covering", [](const labels_in& seg, const std::vector<labels_in>& gts) {
        const label_map s = to_label_map(seg);
        const auto g = to_label_maps(gts);
        py::gil_scoped_release nogil;
        return mt::bsr_covering(s, std::span<const label_map>(g), cpu_omp{});
    });
    m.def("mean_boundary_displacement_error", [](const labels_in& seg, const std::vector<labels_in>& gts) {
        const label_map s = to_label_map(seg);
        const auto g = to_label_maps(gts);
        py::gil_scoped_release nogil;
        return mt::mean_boundary_displacement_error(s, std::span<const label_map>(g), cpu_omp{});
    });
    m.def("hungarian_scores", [](const labels_in& seg, const labels_in& gt, label_t ignore_label) {
        const label_map s = to_label_map(seg), g = to_label_map(gt);
        mt::matched_scores r;
        {
            py::gil_scoped_release nogil;
            r = mt::hungarian_scores(s, g, ignore_label, cpu_omp{});
        }
        py::dict d;
        d["accuracy"] = r.accuracy;
        d["miou_gt_classes"] = r.miou_gt_classes;
        d["miou_union"] = r.miou_union;
        d["weighted_jaccard"] = r.weighted_jaccard;
        d["weighted_jaccard_pred"] = r.weighted_jaccard_pred;
        d["iou_per_gt"] = r.iou_per_gt;
        return d;
    });
    m.def("foreground_iou", [](const labels_in& pred, const labels_in& gt, bool oracle) {
        const label_map p = to_label_map(pred), g = to_label_map(gt);
        mt::foreground_iou_result r;
        {
            py::gil_scoped_release nogil;
            r = mt::foreground_iou(p, g, oracle ? mt::mask_polarity::oracle : mt::mask_polarity::as_given, cpu_omp{});
        }
        return py::make_tuple(r.iou, r.flipped);
    });
}

py::dict ods_ois_dict(const mt::ods_ois_result& r) {
    py::dict d;
    d["per_setting"] = r.per_setting;
    d["ods_setting"] = r.ods_setting;
    d["ods"] = r.ods;
    d["ois"] = r.ois;
    d["per_image_best"] = r.per_image_best;
    return d;
}

void bind_bsr(py::module_& m) {
    m.def("bsr_evaluate", [](const std::vector<std::vector<labels_in>>& segmentations,
                             const std::vector<std::vector<labels_in>>& ground_truths, std::vector<double> thresholds,
                             bool round_like_reference) {
        std::vector<std::vector<label_map>> segs, gts;
        for (const auto& s : segmentations) segs.push_back(to_label_maps(s));
        for (const auto& g : ground_truths) gts.push_back(to_label_maps(g));
        mt::bsr_result r;
        {
            py::gil_scoped_release nogil;
            std::vector<mt::bsr_image_stats> stats;
            for (std::size_t i = 0; i < segs.size(); ++i)
                stats.push_back(mt::bsr_evaluate_image(std::span<const label_map>(segs[i]),
                                                       std::span<const label_map>(gts[i]), cpu_omp{}));
            r = mt::bsr_aggregate(stats, mt::bsr_options{round_like_reference, std::move(thresholds)});
        }
        py::dict d;
        d["thresholds"] = r.thresholds;
        d["pri"] = ods_ois_dict(r.pri);
        d["voi"] = ods_ois_dict(r.voi);
        d["covering_per_setting"] = r.covering_per_setting;
        d["covering_ods_setting"] = r.covering_ods_setting;
        d["covering_ods"] = r.covering_ods;
        d["covering_ois"] = r.covering_ois;
        d["covering_best"] = r.covering_best;
        return d;
    });
}

void bind_reader(py::module_& m) {
    m.def("read_image", [](const std::string& path, int channels) {
        if (!std::filesystem::exists(path)) {
            PyErr_SetString(PyExc_FileNotFoundError, ("tessel.io.read_image: no such file '" + path + "'").c_str());
            throw py::error_already_set();
        }
        image<std::uint8_t> img;
        try {
            py::gil_scoped_release nogil;
            img = io::read_image(path, channels);
        } catch (const error& e) {
            raise_os_error(e.what());
        }
        auto* owned = new image<std::uint8_t>(std::move(img));
        py::capsule free_when_done(owned, [](void* p) { delete static_cast<image<std::uint8_t>*>(p); });
        return py::array_t<std::uint8_t>({static_cast<py::ssize_t>(owned->height()), static_cast<py::ssize_t>(owned->width()),
                                          static_cast<py::ssize_t>(owned->channels())},
                                         owned->data(), free_when_done);
    });
}

}  // namespace
}  // namespace tessel::python

PYBIND11_MODULE(_native, m) {
    using namespace tessel::python;
    using tessel::error;
    m.doc() = "tessel's compiled core; use the tessel package";
    m.attr("__version__") = TESSEL_VERSION_STRING;
    // The backends compiled into this module. cuda is never among them: the extension is built by
    // the host compiler, and tessel's cuda backend exists only in .cu files compiled by nvcc.
    m.attr("backends") = py::make_tuple(std::string(tessel::cpu_omp::name), std::string(tessel::cpu_serial::name));
    // tessel::error is always a rejected input or parameter; its message names the operation.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const error& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });
    bind_slic_felzenszwalb(m);
    bind_metric_functions(m);
    bind_bsr(m);
    bind_reader(m);
    bind_segment(m);
}
