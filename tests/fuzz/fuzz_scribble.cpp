// Fuzz target: a scribble file as tessel-segment --scribble reads it (read_image_size must say one
// channel, then read_label_png), then Kim 2020's scribble check and loss (stages::dfc_loss) on a
// response map of the file's size, with the class count and the responses taken from the input.
// A non-finite loss is a finding as well as a crash.
#include <cmath>

#include "fuzz/fuzz_common.hpp"
#include "tessel/io/image.hpp"
#include "tessel/pipeline/stages/self_train.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace ts = tessel;
    const auto& p = ts::fuzz::write_input(data, size, ".png");
    ts::fuzz::refuse_or_accept([&] {
        if (ts::io::read_image_size(p).channels != 1) return;  // tessel-segment refuses it here
        const ts::label_map s = ts::io::read_label_png(p);
        // The loss on a large map repeats the same arithmetic; the reader above saw the whole file.
        if (s.size() > (1 << 14)) return;
        const ts::index_t q = 2 + static_cast<ts::index_t>(data[size - 1] % 7);
        ts::tensor<float> r(ts::shape{1, q, s.height(), s.width()});
        for (ts::index_t i = 0; i < r.numel(); ++i) r[i] = static_cast<float>(data[static_cast<std::size_t>(i) % size]) / 32.0f - 4.0f;
        ts::tensor<ts::label_t> labels(ts::shape{1, s.height(), s.width()});
        for (ts::index_t i = 0; i < labels.numel(); ++i) labels[i] = static_cast<ts::label_t>(i % q);
        ts::tensor<float> dr(r.shape());
        ts::stages::dfc_loss::bind<ts::cpu_serial> loss(ts::stages::dfc_loss::config{});
        loss.set_scribbles(&s);
        const ts::pipeline::state<ts::cpu_serial> st;
        if (!std::isfinite(loss.value_and_grad(r, labels, dr, st))) __builtin_trap();
    });
    return 0;
}
