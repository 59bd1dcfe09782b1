// The S3-compatible object store the tests stream runs from: SeaweedFS's server (Apache-2.0),
// built from the Go module proxy by install.sh. This module only pins its version.
module quax-stream/tools/s3

go 1.26.6

require github.com/seaweedfs/seaweedfs v0.0.0-20261109003541-7506e5f91cd6

// go-bip39's original repository is gone from the proxy; the maintained fork is identical.
replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
