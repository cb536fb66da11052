// systemd's EnvironmentFile= syntax, from tables: most rows are the examples of systemd's
// own src/test/test-env-file.c, then the lines preforkd rejects, with their line numbers.
// Then the config side: env_file read by load_config, relative paths, optional files.

#include <catch2/catch.hpp>
#include <fstream>
#include <preforkd/core/config.hpp>
#include <preforkd/core/config_diff.hpp>
#include <preforkd/core/env_file.hpp>

#include "../support/test_support.hpp"

using namespace preforkd;
using Vars = std::vector<std::pair<std::string, std::string>>;

namespace {

struct Good {
  const char* what;
  std::string text;
  Vars vars;
};

struct Bad {
  const char* what;
  std::string text;
  int line;
  std::string message;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("env file syntax as systemd reads it", "[env_file]") {
  const std::vector<Good> rows{
      {"plain lines", "a=a\nb=b\n", {{"a", "a"}, {"b", "b"}}},
      {"no newline at the end", "a=a", {{"a", "a"}}},
      {"backslash-newline continues a value", "a=a\\\nb\nc=c\\\nd\\\ne\n", {{"a", "ab"}, {"c", "cde"}}},
      {"a backslash at the very end", "a=a\\", {{"a", "a"}}},
      {"an escaped blank is kept and a plain one trimmed", "g=g\\ \nh=h  \t\n", {{"g", "g "}, {"h", "h"}}},
      {"comments and blank lines (systemd's env_file_4)",
       "# Generated\n\nHWMON_MODULES=\"coretemp f71882fg\"\n\n# For compatibility reasons\n\nMODULE_0=coretemp\n"
       "MODULE_1=f71882fg",
       {{"HWMON_MODULES", "coretemp f71882fg"}, {"MODULE_0", "coretemp"}, {"MODULE_1", "f71882fg"}}},
      {"a backslash does not continue a comment (systemd v254, env_file_3)",
       "#SPAMD_ARGS=\"-d --socketpath=/var/lib/bulwark/spamd \\\n#--nouser-config \\\n#--virus-threshold=1000000\n",
       {}},
      {"semicolon comments", "; a=1\n  # b=2\nc=3 # not a comment\n", {{"c", "3 # not a comment"}}},
      {"empty values (env_file_5)", "a=\nb=", {{"a", ""}, {"b", ""}}},
      {"unquoted escapes (env_file_6 a)", "a=\\ \\n \\t \\x \\y \\' \n", {{"a", " n t x y '"}}},
      {"single quotes keep everything (env_file_6 c)", "c= ' \\n\\t\\$\\`\\\\\n'\n", {{"c", " \\n\\t\\$\\`\\\\\n"}}},
      {"double quotes unescape \" \\ ` $ only (env_file_6 d)",
       "d= \" \\n\\t\\$\\`\\\\\n\"\n",
       {{"d", " \\n\\t$`\\\n"}}},
      {"a backslash-newline in double quotes joins lines", "a=\"x\\\ny\"\n", {{"a", "xy"}}},
      {"whitespace around the key and the equals sign", "  KEY \t=  value\n", {{"KEY", "value"}}},
      {"quotes only open a value", "a=it's\nb=say \"hi\"\n", {{"a", "it's"}, {"b", "say \"hi\""}}},
      {"quoted parts join", "a=\"x\"'y'z\n", {{"a", "xyz"}}},
      {"an equals sign in the value", "URL=http://h/?a=b\n", {{"URL", "http://h/?a=b"}}},
      {"CRLF line ends", "a=1\r\nb=2\r\n", {{"a", "1"}, {"b", "2"}}},
      {"a name set twice keeps its first place and its last value", "a=1\nb=2\na=3\n", {{"a", "3"}, {"b", "2"}}},
      {"an empty file", "", {}},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    const EnvFileParse p = parse_env_file(row.text);
    CHECK_FALSE(p.error);
    if (p.error) UNSCOPED_INFO(p.error->line << ": " << p.error->message);
    CHECK(p.vars == row.vars);
  }
}

TEST_CASE("env file lines preforkd rejects name their line", "[env_file]") {
  const std::vector<Bad> rows{
      {"a line without an equals sign", "a=1\n\nnonsense\n", 3, "expected KEY=VALUE, got \"nonsense\""},
      {"the last line without an equals sign", "a=1\nb", 2, "expected KEY=VALUE, got \"b\""},
      {"shell's export", "# x\nexport A=1\n", 2, "\"export\" is shell syntax"},
      {"a name with a blank", "A B=1\n", 1, "invalid variable name \"A B\""},
      {"a name starting with a digit", "x=1\n1X=2\n", 2, "invalid variable name \"1X\""},
      {"a name with a dash", "A-B=1\n", 1, "invalid variable name \"A-B\""},
      {"no name", "=1\n", 1, "invalid variable name \"\""},
      {"a name preforkd sets", "A=1\nLISTEN_FDS=3\n", 2, "LISTEN_FDS is set by preforkd"},
      {"a PREFORK_ name", "PREFORK_WORKER_ID=3\n", 1, "PREFORK_WORKER_ID is set by preforkd"},
      {"a quote never closed", "a=1\nb=\"open\nc=2\n", 2, "the \" quote opened on line 2 is never closed"},
      {"a single quote never closed", "a='open", 1, "the ' quote opened on line 1 is never closed"},
      {"a NUL byte", std::string("a=1\nb=\0\n", 8), 2, "contains a NUL byte"},
      {"a line after a multi-line value", "a='x\ny'\nbad\n", 3, "expected KEY=VALUE"},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    const EnvFileParse p = parse_env_file(row.text);
    REQUIRE(p.error);
    CHECK(p.error->line == row.line);
    CHECK_THAT(p.error->message, Catch::Contains(row.message));
  }
}

TEST_CASE("env file names as systemd accepts them", "[env_file]") {
  CHECK(env_name_is_valid("A"));
  CHECK(env_name_is_valid("_a1"));
  CHECK_FALSE(env_name_is_valid(""));
  CHECK_FALSE(env_name_is_valid("9A"));
  CHECK_FALSE(env_name_is_valid("A.B"));
  CHECK(parse_env_file_path("-/etc/a.env") == EnvFilePath{"/etc/a.env", true});
  CHECK(parse_env_file_path("/etc/a.env") == EnvFilePath{"/etc/a.env", false});
}

TEST_CASE("load_config reads env files relative to the config and names a bad one", "[env_file]") {
  testsupport::TempDir dir("preforkd-envfile-unit");
  write_file(dir.file("one.env"), "A=1\nB=1\n");
  write_file(dir.file("two.env"), "B=2\n");
  const std::string head = "[worker]\ncommand = [\"/bin/app\"]\nenv_file = ";
  write_file(dir.file("app.toml"), head + "[\"one.env\", \"-nope.env\", \"" + dir.file("two.env") + "\"]\n");
  ConfigResult r = load_config(dir.file("app.toml"), 1);
  INFO((r.errors.empty() ? "" : r.errors.front().to_string()));
  REQUIRE(r.config);
  CHECK(r.config->worker.env_file_vars == Vars{{"A", "1"}, {"B", "2"}});

  // The error is placed at the entry in the config and names the env file and its line.
  write_file(dir.file("two.env"), "B=2\nbad line\n");
  r = load_config(dir.file("app.toml"), 1);
  REQUIRE_FALSE(r.config);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors.front().to_string() == dir.file("app.toml") + ":3:37: worker.env_file[2]: " + dir.file("two.env") +
                                            ":2: expected KEY=VALUE, got \"bad line\"");

  write_file(dir.file("app.toml"), head + "\"missing.env\"\n");
  r = load_config(dir.file("app.toml"), 1);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors.front().to_string() ==
        dir.file("app.toml") + ":3:12: worker.env_file: " + dir.file("missing.env") +
            ": cannot read: No such file or directory (\"-missing.env\" makes it optional)");

  // Not a path: reported by parse_config, before any file is read.
  const ConfigResult typed = parse_config(head + "3\n", "app.toml", 1);
  REQUIRE(typed.errors.size() == 1);
  CHECK_THAT(typed.errors.front().to_string(), Catch::Contains("app.toml:3:12: worker.env_file: expected a path"));
}

TEST_CASE("what the env files set rolls the workers on reload", "[env_file]") {
  Config a;
  Config b = a;
  b.worker.env_file_vars = {{"A", "1"}};
  const ConfigDiff d = diff_configs(a, b);
  CHECK(d.roll_workers);
  CHECK(d.roll_reasons == std::vector<std::string>{"worker.env_file"});
  // Another file with the same content is no change for the workers.
  Config c = b;
  c.worker.env_files = {{"/other.env", "worker.env_file", 1, 1}};
  CHECK_FALSE(diff_configs(b, c).roll_workers);
}
