// bench/peer.hpp: runs one of the PyTorch peer scripts (../shared/peers, see its README) as a
// child process after a bench's own timing, so that the bench can print its time relative to the
// peer's from the same run on the same machine. The interpreter is the first of
// $TESSEL_PEER_PYTHON, python3 and /usr/bin/python3 that can import torch: Debian's python3-torch
// lives in the system interpreter, which a pyenv or venv python3 earlier on PATH does not see.
// TESSEL_PEER_PYTHON=none skips the peer (tuning runs).
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace tessel::bench {

struct peer_result {
    bool ok = false;
    double seconds = 0;  ///< the field asked for, from the peer's JSON line
    std::string json;    ///< the peer's JSON line as printed
    std::string reason;  ///< why it was skipped, when !ok
};

namespace detail {
inline int run_capture(const std::string& command, std::string& out) {
    out.clear();
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return -1;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, pipe)) out += buf;
    const int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
inline std::string quoted(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}
}  // namespace detail

/// The interpreter to run peers with, or "" and a reason.
inline std::string peer_python(std::string& reason) {
    std::vector<std::string> candidates;
    const char* env = std::getenv("TESSEL_PEER_PYTHON");
    if (env && std::string(env) == "none") {
        reason = "TESSEL_PEER_PYTHON=none";
        return "";
    }
    if (env && *env) candidates.emplace_back(env);
    candidates.emplace_back("python3");
    candidates.emplace_back("/usr/bin/python3");
    bool any_python = false;
    std::string out;
    for (const auto& py : candidates) {
        if (detail::run_capture(detail::quoted(py) + " -c pass 2>/dev/null", out) != 0) continue;
        any_python = true;
        if (detail::run_capture(detail::quoted(py) + " -c 'import torch' 2>/dev/null", out) == 0) return py;
    }
    reason = any_python ? "no python3 here can import torch (python3-torch)" : "python3 not found";
    return "";
}

/// Runs `script args` and reads the number after "field": in its JSON line.
inline peer_result run_peer(const std::string& script, const std::string& args, const std::string& field) {
    peer_result r;
    const std::string py = peer_python(r.reason);
    if (py.empty()) return r;
    std::string out;
    const int rc = detail::run_capture(detail::quoted(py) + " " + detail::quoted(script) + " " + args + " 2>&1", out);
    const auto open = out.rfind("\n{", out.size() >= 2 ? out.size() - 2 : 0);
    const std::string line = out.substr(open == std::string::npos ? 0 : open + 1);
    const auto key = line.find("\"" + field + "\":");
    if (rc != 0 || line.empty() || line[0] != '{' || key == std::string::npos) {
        r.reason = "peer failed (exit " + std::to_string(rc) + ")";
        return r;
    }
    r.seconds = std::strtod(line.c_str() + key + field.size() + 3, nullptr);
    r.json = line.substr(0, line.find_last_not_of("\r\n") + 1);
    r.ok = r.seconds > 0;
    if (!r.ok) r.reason = "peer printed no positive " + field;
    return r;
}

/// The JSON fields a bench line appends: the ratio and the peer's seconds, or why it was skipped.
inline std::string peer_fields(double our_seconds, const peer_result& peer, const char* peer_seconds_name) {
    char buf[256];
    if (!peer.ok) {
        std::string reason;
        for (char c : peer.reason) reason += c == '"' || c == '\\' ? '\'' : c;
        return ",\"peer\":\"skipped: " + reason + "\"";
    }
    std::snprintf(buf, sizeof buf, ",\"ratio_to_pytorch\":%.3f,\"%s\":%.4f", our_seconds / peer.seconds,
                  peer_seconds_name, peer.seconds);
    return buf;
}

}  // namespace tessel::bench
