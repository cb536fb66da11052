// preforkctl without --config or --socket: which config file it uses.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <preforkd/ctl/config_choice.hpp>

#include "../support/test_support.hpp"

using namespace preforkd::ctl;
using Names = std::optional<std::vector<std::string>>;

TEST_CASE("preforkctl takes PREFORKD_CONFIG first then the only toml in the directory", "[config_choice]") {
  CHECK(choose_config("/srv/app.toml", "/etc/preforkd", Names{{"a.toml", "b.toml"}}).path == "/srv/app.toml");
  CHECK(choose_config("app.toml", "/etc/preforkd", std::nullopt).path == "app.toml");
  // Set but empty is unset, as the shell's ${PREFORKD_CONFIG:-...}.
  CHECK(choose_config("", "/etc/preforkd", Names{{"web.toml"}}).path == "/etc/preforkd/web.toml");
  CHECK(choose_config(nullptr, "/etc/preforkd/", Names{{"web.toml"}}).path == "/etc/preforkd/web.toml");
}

TEST_CASE("preforkctl says which configs it found and how to choose", "[config_choice]") {
  const ConfigChoice two = choose_config(nullptr, "/etc/preforkd", Names{{"a.toml", "b.toml"}});
  CHECK(two.path.empty());
  CHECK(two.error ==
        "no --config or --socket, PREFORKD_CONFIG is not set and '/etc/preforkd' has 2 configs (a.toml, b.toml); "
        "choose one: --config /etc/preforkd/a.toml or PREFORKD_CONFIG=/etc/preforkd/a.toml");
  const std::string none_message =
      "no --config or --socket, PREFORKD_CONFIG is not set and '/etc/preforkd' has no *.toml; "
      "give --config FILE, --socket PATH or set PREFORKD_CONFIG=FILE";
  CHECK(choose_config(nullptr, "/etc/preforkd", Names{std::vector<std::string>{}}).error == none_message);
  CHECK(choose_config(nullptr, "/etc/preforkd", std::nullopt).error == none_message);
}

TEST_CASE("preforkctl lists the toml files of a directory", "[config_choice]") {
  testsupport::TempDir dir("preforkd-config-choice");
  for (const char* name : {"b.toml", "a.toml", ".hidden.toml", "notes.txt", "a.toml.bak"}) {
    std::ofstream(dir.file(name)) << "";
  }
  std::filesystem::create_directory(dir.file("d.toml"));
  CHECK(toml_files_in(dir.path()) == Names{{"a.toml", "b.toml"}});
  CHECK(toml_files_in(dir.file("missing")) == std::nullopt);
}
