// SLIC and Felzenszwalb timings on a 481 x 321 image (the first BSDS500 validation image when the
// data folder is present, else a synthetic scene), on cpu_omp with 2 threads, beside OpenCV
// ximgproc's SLIC and GraphSegmentation timed in the same run when OpenCV is available.
//
// Both sides do the whole job from an 8-bit RGB image: colour conversion to Lab, 10 SLIC
// iterations, connectivity enforcement, labels out. Times are medians over several runs after a
// warm-up. One JSON object per line:
//   {"bench":"slic_100","seconds":...,"segments":...,"opencv_seconds":...,"ratio_to_opencv":...}
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "tessel/io/image.hpp"
#include "tessel/superpixel/felzenszwalb.hpp"
#include "tessel/superpixel/slic.hpp"
#include "unit/superpixel/scene.hpp"

#if TESSEL_HAS_OPENMP
#  include <omp.h>
#endif
#if defined(TESSEL_HAVE_OPENCV)
#  include <opencv2/core.hpp>
#  include <opencv2/imgproc.hpp>
#  include <opencv2/ximgproc/segmentation.hpp>
#  include <opencv2/ximgproc/slic.hpp>
#endif

namespace ts = tessel;

namespace {

template <class F>
double median_seconds(int runs, F&& f) {
    f();  // warm-up: page faults, buffer allocation
    std::vector<double> t;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

std::string load(ts::image<std::uint8_t>& img) {
    const std::filesystem::path dir = std::filesystem::path(TESSEL_BENCH_DATA_DIR) / "bsds500/val";
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(dir))
        for (const auto& e : std::filesystem::directory_iterator(dir))
            if (e.path().extension() == ".jpg") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (!files.empty()) {
        img = ts::io::read_image(files.front(), 3);
        return files.front().filename().string();
    }
    img = ts::testing::gradient_scene(481, 321);
    return "synthetic_481x321";
}

#if defined(TESSEL_HAVE_OPENCV)
cv::Mat to_bgr(const ts::image<std::uint8_t>& img) {
    cv::Mat rgb(static_cast<int>(img.height()), static_cast<int>(img.width()), CV_8UC3,
                const_cast<std::uint8_t*>(img.data()));
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    return bgr;
}
long distinct(const cv::Mat& labels) {
    std::set<int> s(labels.begin<int>(), labels.end<int>());
    return static_cast<long>(s.size());
}
#endif

}  // namespace

int main() {
#if TESSEL_HAS_OPENMP
    omp_set_num_threads(2);
#endif
    ts::image<std::uint8_t> img;
    const std::string name = load(img);
    const int runs = 7;
#if defined(TESSEL_HAVE_OPENCV)
    cv::setNumThreads(2);
    const cv::Mat bgr = to_bgr(img);
#endif
    auto line = [&](const std::string& bench, double s, long seg, double cs, long cseg) {
        std::printf("{\"bench\":\"%s\",\"seconds\":%.6f,\"segments\":%ld", bench.c_str(), s, seg);
        if (cs > 0)
            std::printf(",\"opencv_seconds\":%.6f,\"opencv_segments\":%ld,\"ratio_to_opencv\":%.4f", cs, cseg, s / cs);
        // OpenMP's wait policy decides how badly cpu_omp suffers when other processes load the cores.
        const char* policy = std::getenv("OMP_WAIT_POLICY");
        std::printf(",\"threads\":2,\"omp_wait_policy\":\"%s\",\"image\":\"%s\",\"width\":%ld,\"height\":%ld}\n",
                    policy ? policy : "default", name.c_str(), static_cast<long>(img.width()),
                    static_cast<long>(img.height()));
        std::fflush(stdout);
    };

    for (const ts::index_t n : {100, 1000, 10000}) {
        ts::slic::bind<ts::cpu_omp> slic({.n_segments = n, .compactness = 10.0f});
        ts::label_map labels;
        const double s = median_seconds(runs, [&] { labels = slic(img); });
        double cs = 0;
        long cseg = 0;
#if defined(TESSEL_HAVE_OPENCV)
        const int region =
            static_cast<int>(std::lround(std::sqrt(static_cast<double>(img.num_pixels()) / static_cast<double>(n))));
        cv::Mat cv_labels;
        cs = median_seconds(runs, [&] {
            cv::Mat lab;
            cv::cvtColor(bgr, lab, cv::COLOR_BGR2Lab);
            auto sp = cv::ximgproc::createSuperpixelSLIC(lab, cv::ximgproc::SLIC, region, 10.0f);
            sp->iterate(10);
            sp->enforceLabelConnectivity();
            sp->getLabels(cv_labels);
        });
        cseg = distinct(cv_labels);
#endif
        line("slic_" + std::to_string(n), s, static_cast<long>(labels.count_labels()), cs, cseg);
    }

    {
        ts::felzenszwalb::bind<ts::cpu_omp> fz({.scale = 100, .sigma = 0.8, .min_size = 50});
        ts::label_map labels;
        const double s = median_seconds(runs, [&] { labels = fz(img); });
        double cs = 0;
        long cseg = 0;
#if defined(TESSEL_HAVE_OPENCV)
        auto gs = cv::ximgproc::segmentation::createGraphSegmentation(0.8, 100.0f, 50);
        cv::Mat cv_labels;
        cs = median_seconds(runs, [&] { gs->processImage(bgr, cv_labels); });
        cseg = distinct(cv_labels);
#endif
        line("felzenszwalb", s, static_cast<long>(labels.count_labels()), cs, cseg);
    }
    return 0;
}
