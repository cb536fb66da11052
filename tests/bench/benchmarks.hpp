#pragma once
// The sub-benchmarks of preforkd_bench, one per file; main.cpp runs them by name.

namespace bench {

void respawn();     // bench_respawn.cpp
void startup();     // bench_startup.cpp
void rss();         // bench_rss.cpp
void throughput();  // bench_throughput.cpp
void churn();       // bench_churn.cpp
void status();      // bench_status.cpp
void reload();      // bench_reload.cpp
void soak();        // bench_soak.cpp
void balance();     // bench_balance.cpp
void metrics();     // bench_metrics.cpp
void upgrade();     // bench_upgrade.cpp
void recycle();     // bench_recycle.cpp
void pool_bench();  // bench_pool.cpp: the adaptive pool beside uWSGI's cheaper subsystem
void pool_ondemand();  // bench_pool_ondemand.cpp: run by pool_bench

// The sizes of the soak, set from main's --restarts= --scale-cycles= --reloads= --requests=.
struct SoakSizes {
  int restarts = 10000;
  int scale_cycles = 2000;
  int reloads = 500;
  int requests = 100000;
};
extern SoakSizes soak_sizes;

}  // namespace bench
