<?php
/**
 * Settings page: the app URL and the "Connect to CartResQ" button that starts activation.
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

/**
 * WooCommerce › CartResQ.
 */
class CartResQ_Admin {

	/**
	 * Hooks.
	 */
	public static function init() {
		add_action( 'admin_menu', array( __CLASS__, 'menu' ) );
		add_action( 'admin_post_cartresq_save', array( __CLASS__, 'save' ) );
	}

	/**
	 * Add the page under WooCommerce.
	 */
	public static function menu() {
		add_submenu_page(
			'woocommerce',
			__( 'CartResQ', 'cartresq' ),
			__( 'CartResQ', 'cartresq' ),
			'manage_woocommerce',
			'cartresq',
			array( __CLASS__, 'render' )
		);
	}

	/**
	 * Save the app URL (nonce and capability checked).
	 */
	public static function save() {
		if ( ! current_user_can( 'manage_woocommerce' ) ) {
			wp_die( esc_html__( 'You are not allowed to change these settings.', 'cartresq' ), 403 );
		}
		check_admin_referer( 'cartresq_save' );
		$url = isset( $_POST['cartresq_app_url'] ) ? esc_url_raw( wp_unslash( $_POST['cartresq_app_url'] ), array( 'https' ) ) : '';
		CartResQ_Settings::update(
			array(
				'app_url'          => untrailingslashit( $url ),
				'marketing_opt_in' => empty( $_POST['cartresq_marketing_opt_in'] ) ? '' : 'yes',
				'sms_opt_in'       => empty( $_POST['cartresq_sms_opt_in'] ) ? '' : 'yes',
			)
		);
		wp_safe_redirect( admin_url( 'admin.php?page=cartresq&updated=1' ) );
		exit;
	}

	/**
	 * The activation URL on the app: it redirects the merchant to this store's /wc-auth/v1/authorize.
	 *
	 * @return string
	 */
	public static function connect_url() {
		$app = CartResQ_Settings::app_url();
		if ( '' === $app ) {
			return '';
		}
		return add_query_arg( 'store_url', rawurlencode( home_url() ), $app . '/auth/woocommerce' );
	}

	/**
	 * Render the page.
	 */
	public static function render() {
		if ( ! current_user_can( 'manage_woocommerce' ) ) {
			return;
		}
		$connected = (int) CartResQ_Settings::get( 'connected_at' );
		$connect   = self::connect_url();
		?>
		<div class="wrap">
			<h1><?php esc_html_e( 'CartResQ', 'cartresq' ); ?></h1>
			<?php if ( $connected ) : ?>
				<div class="notice notice-success inline"><p>
					<?php
					/* translators: %s: date and time of the connection. */
					printf( esc_html__( 'Connected since %s.', 'cartresq' ), esc_html( wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), $connected ) ) );
					?>
				</p></div>
			<?php endif; ?>
			<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
				<input type="hidden" name="action" value="cartresq_save" />
				<?php wp_nonce_field( 'cartresq_save' ); ?>
				<table class="form-table" role="presentation">
					<tr>
						<th scope="row"><label for="cartresq_app_url"><?php esc_html_e( 'CartResQ app URL', 'cartresq' ); ?></label></th>
						<td>
							<input name="cartresq_app_url" id="cartresq_app_url" type="url" class="regular-text" placeholder="https://app.example.com" value="<?php echo esc_attr( CartResQ_Settings::get( 'app_url' ) ); ?>" />
							<p class="description"><?php esc_html_e( 'The https address of your CartResQ app.', 'cartresq' ); ?></p>
						</td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'Marketing opt-in', 'cartresq' ); ?></th>
						<td>
							<label for="cartresq_marketing_opt_in">
								<input name="cartresq_marketing_opt_in" id="cartresq_marketing_opt_in" type="checkbox" value="yes" <?php checked( 'yes', CartResQ_Settings::get( 'marketing_opt_in' ) ); ?> />
								<?php esc_html_e( 'Ask for email marketing consent at checkout (classic checkout and Checkout block)', 'cartresq' ); ?>
							</label>
							<p class="description"><?php esc_html_e( 'Shoppers in the EU, the UK and other regions that need prior consent are only reminded by email when they tick it. Stores based in those regions always ask.', 'cartresq' ); ?></p>
						</td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'SMS opt-in', 'cartresq' ); ?></th>
						<td>
							<label for="cartresq_sms_opt_in">
								<input name="cartresq_sms_opt_in" id="cartresq_sms_opt_in" type="checkbox" value="yes" <?php checked( 'yes', CartResQ_Settings::get( 'sms_opt_in' ) ); ?> />
								<?php esc_html_e( 'Offer an SMS reminder opt-in at checkout (unticked; only a ticked box is SMS consent)', 'cartresq' ); ?>
							</label>
						</td>
					</tr>
				</table>
				<?php submit_button( __( 'Save', 'cartresq' ) ); ?>
			</form>
			<?php if ( $connected && '' !== CartResQ_Settings::app_url() ) : ?>
				<p>
					<a class="button button-primary" href="<?php echo esc_url( CartResQ_Settings::app_url() . '/app/' ); ?>" target="_blank" rel="noopener">
						<?php esc_html_e( 'Open CartResQ (setup, flow, templates, status)', 'cartresq' ); ?>
					</a>
				</p>
			<?php endif; ?>
			<?php if ( '' !== $connect ) : ?>
				<p>
					<a class="button button-primary" href="<?php echo esc_url( $connect ); ?>">
						<?php echo $connected ? esc_html__( 'Reconnect to CartResQ', 'cartresq' ) : esc_html__( 'Connect to CartResQ', 'cartresq' ); ?>
					</a>
				</p>
				<p class="description"><?php esc_html_e( 'WooCommerce asks you to approve read/write API access; CartResQ then creates its webhooks.', 'cartresq' ); ?></p>
			<?php endif; ?>
		</div>
		<?php
	}
}
