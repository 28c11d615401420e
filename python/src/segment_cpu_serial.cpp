// Every preset of methods::all_presets instantiated for the cpu_serial backend (segment_run.hpp).
#include "segment_run.hpp"

namespace tessel::python::segment_detail {

py::tuple run_on_cpu_serial(const py::array_t<std::uint8_t, py::array::c_style>& pixels, const std::string& method,
                            std::uint64_t seed_value, const py::dict& options, int threads, py::object progress) {
    return run_method<cpu_serial>(pixels, method, seed_value, options, threads, std::move(progress));
}

}  // namespace tessel::python::segment_detail
