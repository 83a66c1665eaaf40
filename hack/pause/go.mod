module falco-reporter.local/pause

go 1.26
