// Package socks5test is a minimal SOCKS5 server for tests (RFC 1928: no
// authentication, CONNECT only) that proves where connections went: it
// records every CONNECT request (a name or an address) and the local
// address of every outgoing connection it made, so that an origin server
// can tell a proxied connection (its remote address is one of Outbound)
// from a direct one.
//
// Names are resolved only through the server's own table (Hosts): a test
// gives its servers names that resolve nowhere else (`mirror.test`), so a
// client that tried to connect directly, or to resolve a name itself,
// would fail instead of passing unnoticed.
package socks5test

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Request is one CONNECT a client asked for.
type Request struct {
	Domain bool   // the client sent a name (socks5h), not an address
	Host   string // the name or address as sent
	Port   int
}

// Addr is Host:Port.
func (r Request) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// Server is a running SOCKS5 server on 127.0.0.1.
type Server struct {
	ln    net.Listener
	hosts map[string]string // name → IP

	mu       sync.Mutex
	requests []Request
	outbound map[string]bool
	accepted int
	open     map[net.Conn]bool // closed when the test ends
}

// New starts a server that resolves the names in hosts (name → IP) and
// connects to addresses as given; it stops when the test ends.
func New(t testing.TB, hosts map[string]string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, hosts: hosts, outbound: map[string]bool{}, open: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			s.open[c] = true
			s.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the proxy URL for clients: socks5h://Addr (names go to the proxy).
func (s *Server) URL() string { return "socks5h://" + s.Addr() }

// Requests returns the CONNECT requests so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Accepted is the number of client connections the server accepted.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Outbound reports whether addr (as an origin server sees a client's
// remote address) is one of this proxy's outgoing connections.
func (s *Server) Outbound(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outbound[addr]
}

// Reply codes (RFC 1928 §6).
const (
	replyOK          = 0
	replyUnreachable = 4
	replyRefused     = 5
	replyUnsupported = 7
)

func reply(c net.Conn, code byte) {
	c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
}

func (s *Server) track(c net.Conn) {
	s.mu.Lock()
	s.open[c] = true
	s.mu.Unlock()
}

func (s *Server) forget(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
}

func (s *Server) serve(c net.Conn) {
	defer s.forget(c)
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	if _, err := io.CopyN(io.Discard, c, int64(hdr[1])); err != nil {
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil { // no authentication
		return
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 5 {
		return
	}
	var r Request
	switch req[3] {
	case 1, 4:
		ip := make([]byte, 4)
		if req[3] == 4 {
			ip = make([]byte, 16)
		}
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
		reply(c, replyUnsupported)
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
	if req[1] != 1 { // CONNECT only
		reply(c, replyUnsupported)
		return
	}
	target := r.Host
	if r.Domain {
		ip, ok := s.hosts[r.Host]
		if !ok {
			reply(c, replyUnreachable)
			return
		}
		target = ip
	}
	up, err := net.Dial("tcp", net.JoinHostPort(target, strconv.Itoa(r.Port)))
	if err != nil {
		reply(c, replyRefused)
		return
	}
	s.track(up)
	defer s.forget(up)
	s.mu.Lock()
	s.outbound[up.LocalAddr().String()] = true
	s.mu.Unlock()
	reply(c, replyOK)
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}
