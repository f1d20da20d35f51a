package capture

import "time"

// Timeout is the longest one capture request may take, for a caller that must give it a
// deadline (the API does, independent of the POS's connection): the start/cash, a token
// renewal and the read-back after an answer in doubt are each one secupay call of at most
// secupayCall, and then the capture waits up to printWait (Config.PrintWait) for its receipt.
func Timeout(secupayCall, printWait time.Duration) time.Duration {
	return 3*secupayCall + printWait
}
