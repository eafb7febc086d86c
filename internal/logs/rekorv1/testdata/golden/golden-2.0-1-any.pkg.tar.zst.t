untrusted comment: signature from minisign secret key
RURHT0xERU4xNywgQerrxLSCf6271QlIdQui792OOULlksOE/QNwePseTcQjPONCb6W4Q646/r5F/ybM9rwR5WjADAhxxLoWKw8=
trusted comment: golden-2.0-1-any.pkg.tar.zst
XFfTocn+DkVWFaJgaIbfYH8cDH7wr4eRW1kM6ZK53REQI5VGAqmw/QJCfeAEUHKSNw/zOWz/8hvXW9nCmHjIBw==
