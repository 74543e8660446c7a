"""The wire protocol's small print, each written once (`docs/protocol.md`): Redis key names
(`keys`), the symbol format (`symbols`) and how a decimal is written (`decimals`). Every process
and every benchmark builds names and formats through these; nothing here touches Redis."""
