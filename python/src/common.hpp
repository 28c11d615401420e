// Shared pieces of the tessel Python extension: numpy <-> tessel conversions and the mapping of
// C++ failures to Python exceptions. Every entry point holds the GIL only while it touches Python
// objects; the work itself runs with the GIL released.
#pragma once
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>

#include <tessel/core/error.hpp>
#include <tessel/core/image.hpp>

namespace tessel::python {

namespace py = pybind11;

/// A C-contiguous H x W x C numpy array (the Python layer has checked dtype, rank and values)
/// copied into a tessel image: tessel images own their pixels, so this one copy cannot be avoided.
template <class T>
image<T> to_image(const py::array_t<T, py::array::c_style>& a) {
    const auto h = static_cast<index_t>(a.shape(0)), w = static_cast<index_t>(a.shape(1)),
               c = static_cast<index_t>(a.shape(2));
    image<T> img(w, h, c);
    if (!img.empty()) std::memcpy(img.data(), a.data(), static_cast<std::size_t>(w * h * c) * sizeof(T));
    return img;
}

/// An H x W int32 array copied into a label map.
inline label_map to_label_map(const py::array_t<label_t, py::array::c_style>& a) {
    const auto h = static_cast<index_t>(a.shape(0)), w = static_cast<index_t>(a.shape(1));
    label_map m(w, h);
    if (h * w > 0) std::memcpy(m.data(), a.data(), static_cast<std::size_t>(w * h) * sizeof(label_t));
    return m;
}

/// The labels as an H x W int32 array that owns the label map (no copy: the array's base is a
/// capsule that frees the map).
inline py::array_t<label_t> to_array(label_map&& labels) {
    auto* owned = new label_map(std::move(labels));
    py::capsule free_when_done(owned, [](void* p) { delete static_cast<label_map*>(p); });
    return py::array_t<label_t>({static_cast<py::ssize_t>(owned->height()), static_cast<py::ssize_t>(owned->width())},
                                owned->data(), free_when_done);
}

/// Raised by the Python layer's file readers: tessel reports a bad file as tessel::error, which
/// Python users expect as OSError.
[[noreturn]] inline void raise_os_error(const std::string& message) {
    PyErr_SetString(PyExc_OSError, message.c_str());
    throw py::error_already_set();
}

/// Sets OpenMP's thread count for one call (threads > 0) and restores it afterwards.
class threads_for_call {
public:
    explicit threads_for_call(int threads) : m_before(omp_get_max_threads()) {
        if (threads > 0) omp_set_num_threads(threads);
    }
    ~threads_for_call() { omp_set_num_threads(m_before); }
    threads_for_call(const threads_for_call&) = delete;
    threads_for_call& operator=(const threads_for_call&) = delete;

private:
    int m_before;
};

/// Adds segment() and methods() (segment.cpp).
void bind_segment(py::module_& m);

}  // namespace tessel::python
