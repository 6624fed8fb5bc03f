<?php
/**
 * Plugin Name:       CartResQ for WooCommerce
 * Plugin URI:        https://github.com/cartresq/cartresq
 * Description:       Wins back abandoned carts: connects the store to CartResQ, reports carts and checkout contact details (classic and block checkout), and restores carts from recovery links.
 * Version:           0.1.0
 * Requires at least: 6.3
 * Requires PHP:      7.4
 * Author:            CartResQ
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       cartresq
 * Requires Plugins:  woocommerce
 * WC requires at least: 8.0
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

define( 'CARTRESQ_VERSION', '0.1.0' );
define( 'CARTRESQ_FILE', __FILE__ );
define( 'CARTRESQ_DIR', plugin_dir_path( __FILE__ ) );
define( 'CARTRESQ_OPTION', 'cartresq_settings' );

require_once CARTRESQ_DIR . 'includes/class-cartresq-settings.php';
require_once CARTRESQ_DIR . 'includes/class-cartresq-admin.php';
require_once CARTRESQ_DIR . 'includes/class-cartresq-rest.php';
require_once CARTRESQ_DIR . 'includes/class-cartresq-frontend.php';
require_once CARTRESQ_DIR . 'includes/class-cartresq-restore.php';
require_once CARTRESQ_DIR . 'includes/class-cartresq-consent.php';
require_once CARTRESQ_DIR . 'includes/class-cartresq-cart-key.php';

/**
 * Wire the plugin once WooCommerce is loaded; without WooCommerce it does nothing.
 */
function cartresq_init() {
	if ( ! class_exists( 'WooCommerce' ) ) {
		return;
	}
	CartResQ_Admin::init();
	CartResQ_Rest::init();
	CartResQ_Frontend::init();
	CartResQ_Restore::init();
	CartResQ_Consent::init();
	CartResQ_Cart_Key::init();
}
add_action( 'plugins_loaded', 'cartresq_init' );

/**
 * Declare compatibility with WooCommerce's order tables (HPOS) and the cart/checkout blocks.
 */
function cartresq_declare_compatibility() {
	if ( class_exists( '\Automattic\WooCommerce\Utilities\FeaturesUtil' ) ) {
		\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'custom_order_tables', CARTRESQ_FILE, true );
		\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'cart_checkout_blocks', CARTRESQ_FILE, true );
	}
}
add_action( 'before_woocommerce_init', 'cartresq_declare_compatibility' );
