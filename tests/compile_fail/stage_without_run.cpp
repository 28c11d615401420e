// expect: must be constructible from its config and have run
// A stage with no run() is reported by the pipeline's per-stage gate, naming what is missing.
#include <tessel/pipeline/pipeline.hpp>

struct no_run_stage {
    struct config {};
    template <class B>
    struct bind {
        explicit bind(const config&) {}
    };
};

int main() {
    tessel::pipeline::pipeline<tessel::cpu_serial, no_run_stage> p({});
    (void)p;
    return 0;
}
