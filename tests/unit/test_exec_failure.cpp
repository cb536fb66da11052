// A command that cannot be run: which errors end a start, and what the message says.

#include <catch2/catch.hpp>
#include <cerrno>
#include <preforkd/core/exec_failure.hpp>

using namespace preforkd;

TEST_CASE("exec errors that mean the command cannot be run at all") {
  CHECK(cannot_execute(ENOENT));
  CHECK(cannot_execute(EACCES));
  CHECK(cannot_execute(ENOEXEC));
  CHECK_FALSE(cannot_execute(0));
  CHECK_FALSE(cannot_execute(E2BIG));
  CHECK_FALSE(cannot_execute(ETXTBSY));
  CHECK_FALSE(cannot_execute(ENOMEM));
}

TEST_CASE("the start fails only when the first exec of every slot could not run the command") {
  using V = std::vector<std::optional<int>>;
  struct Row {
    V first;
    StartVerdict verdict;
  };
  const std::vector<Row> table = {
      {V{ENOENT}, StartVerdict::cannot_execute},
      {V{ENOENT, ENOENT, ENOENT, ENOENT}, StartVerdict::cannot_execute},
      {V{EACCES, ENOEXEC}, StartVerdict::cannot_execute},
      {V{0}, StartVerdict::running},
      {V{ENOENT, 0}, StartVerdict::running},             // one worker runs
      {V{ENOENT, std::nullopt}, StartVerdict::running},  // a spawn failure is retried as a crash
      {V{ENOENT, E2BIG}, StartVerdict::running},         // another error: supervised as usual
      {V{ETXTBSY, ETXTBSY}, StartVerdict::running},      // a binary being written: it may work soon
      {V{}, StartVerdict::running},
  };
  for (std::size_t i = 0; i < table.size(); ++i) {
    INFO("row " << i);
    CHECK(judge_start(table[i].first) == table[i].verdict);
  }
}

TEST_CASE("the message names the command and what it resolved to and the directory and PATH") {
  struct Row {
    ExecFacts facts;
    std::string text;
  };
  const std::vector<Row> table = {
      {{"gunicornn", "gunicornn", "/srv/app", "/usr/bin:/bin", ENOENT},
       "cannot execute 'gunicornn': No such file or directory (not found in PATH=/usr/bin:/bin; working directory "
       "'/srv/app')"},
      {{"gunicorn", "/usr/bin/gunicorn", "/srv/app", "/usr/bin:/bin", EACCES},
       "cannot execute 'gunicorn': Permission denied (resolved to '/usr/bin/gunicorn' in PATH=/usr/bin:/bin; working "
       "directory '/srv/app')"},
      {{"./app.py", "./app.py", "/srv/app", "/usr/bin", ENOENT},
       "cannot execute './app.py': No such file or directory (resolved to '/srv/app/app.py' against the working "
       "directory '/srv/app'; PATH=/usr/bin)"},
      {{"../bin/app", "../bin/app", "/srv/app", "/usr/bin", ENOEXEC},
       "cannot execute '../bin/app': Exec format error (resolved to '/srv/bin/app' against the working directory "
       "'/srv/app'; PATH=/usr/bin)"},
      {{"/opt/app/server", "/opt/app/server", "/", "/usr/bin", ENOENT},
       "cannot execute '/opt/app/server': No such file or directory (working directory '/'; PATH=/usr/bin)"},
  };
  for (const auto& row : table) CHECK(describe_exec_failure(row.facts) == row.text);
}
