<?php
/**
 * The checkout's marketing opt-in, when the merchant turns it on (WooCommerce › CartResQ).
 *
 * WooCommerce orders carry no marketing-consent field, so without this CartResQ may not email shoppers
 * in regions that need prior consent (EU, UK, ...). The shopper's choice is stored as the order meta
 * `_cartresq_marketing_opt_in` = `yes`, which the REST API and webhooks include in `meta_data`.
 * - Classic checkout: a checkbox above the Place order button, saved with the order.
 * - Checkout block: an additional checkout field (WooCommerce 8.9+, location `order`); WooCommerce keeps
 *   it as `_wc_other/cartresq/marketing-opt-in`, and it is copied to our key as well.
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

/**
 * Marketing opt-in on both checkouts.
 */
class CartResQ_Consent {

	const META     = '_cartresq_marketing_opt_in';
	const FIELD    = 'cartresq_marketing_opt_in';
	const BLOCK_ID = 'cartresq/marketing-opt-in';

	/**
	 * Hooks, only when the merchant enabled the opt-in.
	 */
	public static function init() {
		if ( 'yes' !== CartResQ_Settings::get( 'marketing_opt_in' ) ) {
			return;
		}
		add_action( 'woocommerce_review_order_before_submit', array( __CLASS__, 'classic_field' ) );
		add_action( 'woocommerce_checkout_update_order_meta', array( __CLASS__, 'classic_save' ), 10, 1 );
		add_action( 'woocommerce_init', array( __CLASS__, 'register_block_field' ) );
		add_action( 'woocommerce_set_additional_field_value', array( __CLASS__, 'block_save' ), 10, 4 );
	}

	/**
	 * The text next to the checkbox.
	 *
	 * @return string
	 */
	public static function label() {
		return __( 'Email me reminders and offers about my cart and this store. I can unsubscribe at any time.', 'cartresq' );
	}

	/**
	 * Classic checkout: the checkbox, unticked (consent must be given, not assumed).
	 */
	public static function classic_field() {
		woocommerce_form_field(
			self::FIELD,
			array(
				'type'     => 'checkbox',
				'class'    => array( 'form-row-wide', 'cartresq-marketing-opt-in' ),
				'label'    => self::label(),
				'required' => false,
			),
			0
		);
	}

	/**
	 * Classic checkout: store the ticked box on the order (WooCommerce verified its checkout nonce before this hook).
	 *
	 * @param int $order_id The new order.
	 */
	public static function classic_save( $order_id ) {
		if ( empty( $_POST[ self::FIELD ] ) ) { // phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked by WC_Checkout::process_checkout().
			return;
		}
		$order = wc_get_order( $order_id );
		if ( $order ) {
			$order->update_meta_data( self::META, 'yes' ); // Order CRUD: works with HPOS and posts storage.
			$order->save();
		}
	}

	/**
	 * Checkout block: register the checkbox through the additional checkout fields API when it exists.
	 */
	public static function register_block_field() {
		if ( ! function_exists( 'woocommerce_register_additional_checkout_field' ) ) {
			return;
		}
		woocommerce_register_additional_checkout_field(
			array(
				'id'       => self::BLOCK_ID,
				'label'    => self::label(),
				'location' => 'order',
				'type'     => 'checkbox',
				'required' => false,
			)
		);
	}

	/**
	 * Checkout block: mirror the field's value to our meta key; WooCommerce saves the order afterwards.
	 *
	 * @param string $key       Field id.
	 * @param mixed  $value     Field value.
	 * @param string $group     Field group.
	 * @param object $wc_object The order (or customer) being updated.
	 */
	public static function block_save( $key, $value, $group, $wc_object ) {
		if ( self::BLOCK_ID !== $key || ! ( $wc_object instanceof WC_Order ) ) {
			return;
		}
		if ( wc_string_to_bool( $value ) ) {
			$wc_object->update_meta_data( self::META, 'yes' );
		} else {
			$wc_object->delete_meta_data( self::META );
		}
	}
}
