package httpclient

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// socksServer is a minimal SOCKS5 server (RFC 1928, no authentication,
// CONNECT only) for tests. It records what clients asked for and the local
// addresses of its own outgoing connections, and can map host names that
// do not resolve anywhere to real addresses (its "DNS").
type socksServer struct {
	ln    net.Listener
	hosts map[string]string // name -> ip

	mu        sync.Mutex
	requests  []socksRequest
	outbound  map[string]bool // local addr of each connection it made
	connCount int
}

type socksRequest struct {
	Domain bool   // ATYP 3: the client sent a name, not an address
	Host   string // name or IP as sent
	Port   int
}

func newSOCKSServer(t *testing.T, hosts map[string]string) *socksServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socksServer{ln: ln, hosts: hosts, outbound: map[string]bool{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *socksServer) Addr() string { return s.ln.Addr().String() }

func (s *socksServer) Requests() []socksRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]socksRequest(nil), s.requests...)
}

func (s *socksServer) madeConnectionFrom(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outbound[addr]
}

func (s *socksServer) serve(c net.Conn) {
	defer c.Close()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil { // no authentication
		return
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[1] != 1 {
		return
	}
	var r socksRequest
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		if _, err := io.ReadFull(c, ip); err != nil {
			return
		}
		r.Host = net.IP(ip).String()
	case 4:
		ip := make([]byte, 16)
		if _, err := io.ReadFull(c, ip); err != nil {
			return
		}
		r.Host = net.IP(ip).String()
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		name := make([]byte, l[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return
		}
		r.Host, r.Domain = string(name), true
	default:
		return
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return
	}
	r.Port = int(binary.BigEndian.Uint16(port[:]))
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.mu.Unlock()

	target := r.Host
	if ip, ok := s.hosts[r.Host]; ok {
		target = ip
	} else if r.Domain {
		c.Write([]byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}) // host unreachable
		return
	}
	up, err := net.Dial("tcp", net.JoinHostPort(target, strconv.Itoa(r.Port)))
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return
	}
	defer up.Close()
	s.mu.Lock()
	s.outbound[up.LocalAddr().String()] = true
	s.connCount++
	s.mu.Unlock()
	if _, err := c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}
