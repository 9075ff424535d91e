module matchlock/sdk

go 1.19
