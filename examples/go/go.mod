module matchlock/examples

go 1.19

require matchlock/sdk v0.0.0

replace matchlock/sdk => ../../sdk/go
