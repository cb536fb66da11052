module example.com/preforkd-hello

go 1.19
