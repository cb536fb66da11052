// [worker] keys about what a worker may use and how it is watched: the CPUs it runs on,
// when it counts as stalled, the memory and lifetime that recycle it, how often it is
// sampled, and the output kept of it.

#include <preforkd/core/cpu_affinity.hpp>
#include <preforkd/core/output_ring.hpp>
#include <preforkd/core/recycle_plan.hpp>
#include <preforkd/core/stall_plan.hpp>

#include <fmt/format.h>

#include <algorithm>

#include "config_reader.hpp"

namespace preforkd::config_detail {
namespace {

constexpr std::string_view cpu_affinity_expected = R"(must be "auto" or a list of CPU numbers such as [0, 2])";

// "auto" or [0, 2]: CPU numbers from 0 to max_cpu_number, each once. With a lookup, each
// must be in the master's usable set (its affinity mask), reported at the element.
void read_cpu_affinity(const Section& s, WorkerConfig& out) {
  const Field f = s.field("cpu_affinity");
  if (f.node == nullptr) return;
  if (const auto* text = f.node->as_string(); text != nullptr && text->get() == "auto") {
    out.cpu_affinity = CpuAffinity{CpuAffinity::Kind::automatic, {}};
    return;
  }
  const auto* array = f.node->as_array();
  if (array == nullptr || array->empty()) {
    report(s.diag(), f, fmt::format("{}, got {}", cpu_affinity_expected,
                                    array != nullptr ? "[]" : f.node->is_string() ? value_text(*f.node)
                                                                                  : type_name(*f.node)));
    return;
  }
  if (!within(s, f, array->size(), static_cast<std::size_t>(max_cpu_number) + 1, "CPUs")) return;
  const SystemLookup* lookup = s.diag().lookup();
  const std::vector<int> usable =
      lookup != nullptr && lookup->usable_cpu_list ? lookup->usable_cpu_list() : std::vector<int>{};
  std::vector<int> cpus;
  bool ok = true;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    const Field element{&item, fmt::format("{}[{}]", f.key, i), place_of(item)};
    const auto cpu = read_integer(s.diag(), element, 0, max_cpu_number);
    if (!cpu) {
      ok = false;
      continue;
    }
    const int n = static_cast<int>(*cpu);
    if (std::find(cpus.begin(), cpus.end(), n) != cpus.end()) {
      report(s.diag(), element, fmt::format("CPU {} is listed twice", n));
      ok = false;
      continue;
    }
    cpus.push_back(n);
    if (lookup == nullptr || !lookup->usable_cpu_list) continue;
    if (auto problem = affinity_problem(CpuAffinity{CpuAffinity::Kind::list, {n}}, usable)) {
      report(s.diag(), element, *problem);
      ok = false;
    }
  }
  if (ok) out.cpu_affinity = CpuAffinity{CpuAffinity::Kind::list, std::move(cpus)};
}

// "0s" (off), or long enough for sampling to tell a worker that takes connections from one
// that does not.
void read_stall_timeout(const Section& s, WorkerConfig& out) {
  const Field f = s.field("stall_timeout");
  const auto timeout = read_duration(s.diag(), f);
  if (!timeout) return;
  if (*timeout > Duration::zero() && *timeout < min_stall_timeout) {
    report(s.diag(), f,
           fmt::format(R"(must be "0s" (off) or at least {}, got {})", exact_duration(min_stall_timeout),
                       value_text(*f.node)));
    return;
  }
  out.stall_timeout = *timeout;
}

// "" (off, the default) or a size from min_max_memory to max_max_memory.
void read_max_memory(const Section& s, WorkerConfig& out) {
  const Field f = s.field("max_memory");
  if (f.node == nullptr) return;
  const std::string expected =
      fmt::format(R"(must be "" (off) or a size from {} MiB to {} GiB such as "512MiB")", min_max_memory >> 20,
                  max_max_memory >> 30);
  const auto* text = f.node->as_string();
  if (text == nullptr) {
    report(s.diag(), f, fmt::format("{}, got {}", expected, f.node->is_integer() ? value_text(*f.node) : type_name(*f.node)));
    return;
  }
  if (text->get().empty()) {
    out.max_memory = 0;
    return;
  }
  const auto size = read_size_text(s.diag(), f, text->get(), min_max_memory, max_max_memory,
                                   fmt::format("{}, got {}", expected, value_text(*f.node)));
  if (size) out.max_memory = *size;
}

// "" or "0s" (off, the default), or a duration from min_max_lifetime to max_max_lifetime.
void read_max_lifetime(const Section& s, WorkerConfig& out) {
  const Field f = s.field("max_lifetime");
  if (f.node == nullptr) return;
  if (const auto* text = f.node->as_string(); text != nullptr && text->get().empty()) {
    out.max_lifetime = Duration::zero();
    return;
  }
  const auto lifetime = read_duration(s.diag(), f);
  if (!lifetime) return;
  if (*lifetime != Duration::zero() && (*lifetime < min_max_lifetime || *lifetime > max_max_lifetime)) {
    report(s.diag(), f,
           fmt::format(R"(must be "" (off) or a duration from {} to {} such as "6h", got {})",
                       exact_duration(min_max_lifetime), exact_duration(max_max_lifetime), value_text(*f.node)));
    return;
  }
  out.max_lifetime = *lifetime;
}

// How often the usage sampler reads each worker's memory and CPU time (status, max_memory).
void read_memory_sample_interval(const Section& s, WorkerConfig& out) {
  const Field f = s.field("memory_sample_interval");
  const auto interval = read_duration(s.diag(), f);
  if (!interval) return;
  if (*interval < min_memory_sample_interval || *interval > max_memory_sample_interval) {
    report(s.diag(), f,
           fmt::format("must be a duration from {} to {}, got {}", exact_duration(min_memory_sample_interval),
                       exact_duration(max_memory_sample_interval), value_text(*f.node)));
    return;
  }
  out.memory_sample_interval = *interval;
}

// "0" (off) or a size from min_log_buffer to max_log_buffer per slot; with the count,
// at most max_log_buffer_total in all (core/output_ring.hpp).
void read_log_buffer(const Section& s, WorkerConfig& out) {
  const Field f = s.field("log_buffer");
  if (f.node == nullptr) return;
  const std::string expected = fmt::format(R"(must be "0" (off) or a size from {} KiB to {} MiB such as "64KiB")",
                                           min_log_buffer >> 10, max_log_buffer >> 20);
  const auto* text = f.node->as_string();
  if (text == nullptr) {
    report(s.diag(), f, fmt::format("{}, got {}", expected, f.node->is_integer() ? value_text(*f.node) : type_name(*f.node)));
    return;
  }
  const auto size = text->get() == "0" ? std::optional<std::uint64_t>(0)
                                        : read_size_text(s.diag(), f, text->get(), min_log_buffer, max_log_buffer,
                                                         fmt::format("{}, got {}", expected, value_text(*f.node)),
                                                         ZeroSize::off);
  if (!size) return;
  if (*size * static_cast<std::uint64_t>(out.count) > max_log_buffer_total) {
    report(s.diag(), f,
           fmt::format("{} per slot for {} workers is more than the {} MiB the master keeps for worker output in all",
                       value_text(*f.node), out.count, max_log_buffer_total >> 20));
    return;
  }
  out.log_buffer = *size;
}

}  // namespace

void read_worker_resources(const Section& s, WorkerConfig& out) {
  read_cpu_affinity(s, out);
  read_stall_timeout(s, out);
  read_max_memory(s, out);
  read_max_lifetime(s, out);
  read_memory_sample_interval(s, out);
  read_log_buffer(s, out);
}

}  // namespace preforkd::config_detail
