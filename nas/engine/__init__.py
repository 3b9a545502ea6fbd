"""The search engine: `api` (search, optimize, resume) runs `loop`, the one ask/tell loop. The
loop asks `phases` (the searcher's, then the replicas') for the next trial, plans it with `reuse`,
charges the `ledger`, hands it to an executor (`running`), and records what it learned in
`memory`; `checkpoints`, `ensemble` candidates, `result`, `seeds`, `failures` and `callbacks`
(how views follow a search) serve it."""
