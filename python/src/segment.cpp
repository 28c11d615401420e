// tessel._native.segment and methods(): every preset of methods::all_presets, run from Python on
// the backend the caller names. This unit binds them and instantiates every preset for cpu_omp;
// segment_cpu_serial.cpp does the same for cpu_serial (segment_run.hpp holds the shared code),
// so that a parallel build compiles the two heavy units side by side.
#include "segment_run.hpp"

namespace tessel::python {

namespace segment_detail {
py::tuple run_on_cpu_omp(const py::array_t<std::uint8_t, py::array::c_style>& pixels, const std::string& method,
                         std::uint64_t seed_value, const py::dict& options, int threads, py::object progress) {
    return run_method<cpu_omp>(pixels, method, seed_value, options, threads, std::move(progress));
}
}  // namespace segment_detail

void bind_segment(py::module_& m) {
    using namespace segment_detail;
    m.def(
        "segment",
        [](const py::array_t<std::uint8_t, py::array::c_style>& pixels, const std::string& method, std::uint64_t seed_value,
           const py::dict& options, int threads, py::object progress, const std::string& backend) {
            if (backend == cpu_serial::name)
                return run_on_cpu_serial(pixels, method, seed_value, options, threads, std::move(progress));
            if (backend == cpu_omp::name)
                return run_on_cpu_omp(pixels, method, seed_value, options, threads, std::move(progress));
            // The Python layer checks the name first; this guards direct calls of the core.
            throw py::value_error("tessel.segment: backend '" + backend + "' is not built into this module");
        },
        py::arg("pixels"), py::arg("method"), py::arg("seed"), py::arg("options"), py::arg("threads"),
        py::arg("progress"), py::arg("backend"),
        "Runs a preset on a C-contiguous H x W x 3 uint8 array on a backend; returns (labels, report).");

    m.def("methods", [] {
        py::list out;
        tm::all_presets::for_each([&](auto id) {
            using P = typename decltype(id)::type;
            py::dict d;
            d["name"] = std::string(P::name);
            d["summary"] = std::string(P::summary);
            typename P::config c{};
            py::list opts;
            option_describer desc{opts};
            P::visit_options(c, desc);
            d["options"] = opts;
            out.append(d);
        });
        return out;
    });
}

}  // namespace tessel::python
