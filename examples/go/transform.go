// An order summary: validates an order event and prices it (the same
// function as examples/c/transform.c).
//
//	{"order_id": "A-1001", "customer": {"email": "ADA@Example.com"}, "currency": "EUR",
//	 "items": [{"sku": "BK-1", "price": 4.5, "qty": 3}, ...],
//	 "coupon": {"code": "SAVE10", "percent": 10}}
//
// → {"order_id", "customer" (the email, lower case), "currency", "lines": [{"sku", "amount"}],
// "item_count", "subtotal", "discount", "total"}. Amounts are computed in
// cents. An invalid order returns a *ValidationError: the invocation fails
// with type "ValidationError" and its message.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

type Order struct {
	OrderID  string `json:"order_id"`
	Customer struct {
		Email string `json:"email"`
	} `json:"customer"`
	Currency string `json:"currency"`
	Items    []struct {
		SKU   string   `json:"sku"`
		Price *float64 `json:"price"`
		Qty   float64  `json:"qty"`
	} `json:"items"`
	Coupon struct {
		Percent float64 `json:"percent"`
	} `json:"coupon"`
}

type Line struct {
	SKU    string  `json:"sku"`
	Amount float64 `json:"amount"`
}

type Summary struct {
	OrderID   string  `json:"order_id"`
	Customer  string  `json:"customer"`
	Currency  string  `json:"currency"`
	Lines     []Line  `json:"lines"`
	ItemCount int64   `json:"item_count"`
	Subtotal  float64 `json:"subtotal"`
	Discount  float64 `json:"discount"`
	Total     float64 `json:"total"`
}

type ValidationError struct{ Message string }

func (e *ValidationError) Error() string { return e.Message }

func handler(event interface{}, context map[string]string) (interface{}, error) {
	raw, _ := json.Marshal(event)
	var order Order
	if err := json.Unmarshal(raw, &order); err != nil {
		return nil, &ValidationError{"the order does not have the expected shape: " + err.Error()}
	}
	if order.OrderID == "" {
		return nil, &ValidationError{"order_id must be a string"}
	}
	if len(order.Items) == 0 {
		return nil, &ValidationError{"items must be a non-empty array"}
	}
	summary := Summary{
		OrderID:  order.OrderID,
		Customer: strings.ToLower(order.Customer.Email),
		Currency: order.Currency,
		Lines:    []Line{},
	}
	if summary.Currency == "" {
		summary.Currency = "EUR"
	}
	var subtotal int64
	for i, item := range order.Items {
		if item.SKU == "" || item.Qty <= 0 || item.Qty != math.Floor(item.Qty) ||
			item.Price == nil || *item.Price < 0 {
			return nil, &ValidationError{
				fmt.Sprintf("items[%d] needs a sku, a whole positive qty and a price", i)}
		}
		amount := int64(math.Round(*item.Price*100)) * int64(item.Qty)
		subtotal += amount
		summary.ItemCount += int64(item.Qty)
		summary.Lines = append(summary.Lines, Line{item.SKU, float64(amount) / 100})
	}
	discount := int64(math.Round(float64(subtotal) * order.Coupon.Percent / 100))
	summary.Subtotal = float64(subtotal) / 100
	summary.Discount = float64(discount) / 100
	summary.Total = float64(subtotal-discount) / 100
	return summary, nil
}
