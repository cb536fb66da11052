// preforkctl: the control client (see issue: control socket).
#include <cstdio>
int main() {
  std::fprintf(stderr, "preforkctl: the control socket is not available in this build\n");
  return 69;
}
